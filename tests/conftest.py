import importlib
import socket

import pytest
from django.apps import apps
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp_webauthn.models import WebAuthnCredential
from hypothesis import settings as hypothesis_settings

from accounts.models import AuthenticatorDevice
from accounts.roles import Role
from tests.factories import PASSWORD, make_practice, make_user

# Property tests check behaviour, never time: no per-example deadline (a loaded CI
# machine would otherwise fail a correct example), and a failure prints how to replay it.
hypothesis_settings.register_profile("ehr", deadline=None, print_blob=True)
hypothesis_settings.load_profile("ehr")


@pytest.fixture(autouse=True)
def _force_login_is_a_complete_sign_in(monkeypatch):
    """Client.force_login stands for password and code: mark the session MFA-verified."""
    original = Client.force_login

    def force_login(self, user, backend=None):
        original(self, user, backend)
        # A passkey where the account has one (as the sign-in step offers it first).
        device = (
            WebAuthnCredential.objects.filter(user=user, confirmed=True).first()
            or AuthenticatorDevice.objects.filter(user=user, confirmed=True).first()
        )
        if device is not None:
            session = self.session
            session[DEVICE_ID_SESSION_KEY] = device.persistent_id
            session.save()

    monkeypatch.setattr(Client, "force_login", force_login)


@pytest.fixture(autouse=True)
def _streamed_responses_are_read_to_their_end(monkeypatch):
    """Fail a test that leaves a streamed response unread.

    A streaming view sends its status line before its generator runs: a 200 says
    nothing about the body, which can still fail after it went out. A body read
    until it raised counts as read; the test saw the error.
    """
    streams = []
    original = Client.request

    def request(self, **kwargs):
        response = original(self, **kwargs)
        if response.streaming and not response.is_async:
            stream = _Stream(kwargs.get("PATH_INFO", "?"))
            response.streaming_content = stream.read(response.streaming_content)
            streams.append(stream)
        return response

    monkeypatch.setattr(Client, "request", request)
    yield
    unread = [stream.path for stream in streams if not stream.finished]
    if unread:
        pytest.fail(f"streamed response not read to its end: {', '.join(unread)}")


class _Stream:
    def __init__(self, path: str):
        self.path = path
        self.finished = False

    def read(self, chunks):
        try:
            yield from chunks
        except Exception:
            self.finished = True
            raise
        self.finished = True


@pytest.fixture(autouse=True)
def _reports_read_the_primary_unless_about_the_replica(request):
    """With a replica configured, only tests marked `replica` read from it.

    Every other test writes inside a transaction that is never committed, which
    no standby ever sees.
    """
    if django_settings.REPORTING_DATABASE == "default" or request.node.get_closest_marker(
        "replica"
    ):
        return
    request.getfixturevalue("settings").REPORTING_DATABASE = "default"


@pytest.fixture(autouse=True)
def _dashboard_cache_starts_empty():
    """Each test starts with no cached dashboard days.

    Tests write events at moved clocks, into days another test's dashboard may
    have cached as over; in production no event is ever written into such a day.
    """
    from audit.dashboard import settled_days

    settled_days.clear()


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    """Each test stores uploads in its own folder."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _reference_data(request):
    """Put back the rows data migrations create, which a transactional test's flush removes."""
    marker = request.node.get_closest_marker("django_db")
    transactional = bool(marker and marker.kwargs.get("transaction"))
    if not transactional and not {"transactional_db", "live_server"} & set(request.fixturenames):
        yield
        return
    request.getfixturevalue("transactional_db")
    roles = importlib.import_module("accounts.migrations.0002_roles_and_specialties")
    roles.create(apps, None)
    audit_guard_migration.create_platform_chain(apps, None)
    audit_guards(install=True)
    yield
    # The flush that ends a transactional test deletes every row, which the guards
    # forbid; they are put back at the start of the next one.
    audit_guards(install=False)


audit_guard_migration = importlib.import_module("audit.migrations.0003_chains_per_practice")
audit_guards_now = importlib.import_module("audit.migrations.0006_partitions_and_archives")


def audit_guards(*, install: bool) -> None:
    with connection.cursor() as cursor:
        for sql in audit_guards_now.statements(connection.vendor, install=install):
            cursor.execute(sql)


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def practice(db):
    return make_practice("Ludwig Family Medicine")


@pytest.fixture
def other_practice(db):
    return make_practice("Harbor Street Clinic")


@pytest.fixture
def provider(practice):
    return make_user(
        Role.PROVIDER,
        practice=practice,
        username="dorothy",
        first_name="dorothy",
        last_name="Ludwig",
        doctor_id=496094,
    )


@pytest.fixture
def nurse(practice):
    return make_user(Role.NURSE, practice=practice, username="dori", first_name="Dori")


@pytest.fixture
def other_provider(other_practice):
    return make_user(Role.PROVIDER, practice=other_practice, username="otherdoc")


@pytest.fixture
def agent(db):
    return make_user(Role.SUPPORT_AGENT, username="agent")


@pytest.fixture
def provider_client(client, provider):
    client.force_login(provider)
    return client


@pytest.fixture
def nurse_client(client, nurse):
    client.force_login(nurse)
    return client


class Inbox:
    """What a local SMTP server received."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        from email import message_from_bytes

        self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SmtpServer:
    """A real SMTP server (aiosmtpd) on a loopback port, which a test can stop and start."""

    def __init__(self, port: int, inbox=None):
        self.port, self.inbox, self.controller = port, inbox or Inbox(), None

    @property
    def messages(self):
        return self.inbox.messages

    def start(self):
        from aiosmtpd.controller import Controller

        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp_server(settings):
    """Mail goes through a real SMTP server on loopback (started; `stop()` to take it down)."""
    server = SmtpServer(free_port())
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = server.port
    settings.EMAIL_TIMEOUT = 5
    server.start()
    yield server
    server.stop()


PRACTICE_MEMBERS = [
    Role.PROVIDER,
    Role.NURSE,
    Role.SCHEDULER,
    Role.BILLING,
    Role.PRACTICE_ADMIN,
    Role.COMPLIANCE_OFFICER,
]


@pytest.fixture
def people(db):
    """One account of every role, in one practice where the role belongs to one."""
    practice = make_practice("Ludwig Family Medicine")
    users = {}
    for role in Role:
        users[role.value] = make_user(
            role,
            practice=practice if role in PRACTICE_MEMBERS else None,
            username=f"m_{role.value}",
        )
    return users
