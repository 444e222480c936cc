"""The operator's commands that stand in for the libraries' own: audited, or refused."""

import pytest
from axes.models import AccessAttempt
from django.core.management import CommandError, call_command
from django.test import Client
from django_otp.plugins.otp_static.models import StaticDevice

from accounts.lockout import sign_in_locked_until
from accounts.models import User
from audit import kinds
from audit.models import AuditEvent
from tests.accounts.test_lockout import fail

ADMIN = [
    "--username=pat.admin",
    "--email=pat@platform.example",
    "--first-name=Pat",
    "--last-name=Admin",
    "--noinput",
]


def test_a_platform_administrator_is_created_with_a_role_and_recorded(db, monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-console-Pass-2031")
    call_command("createsuperuser", *ADMIN)
    user = User.objects.get(username="pat.admin")
    assert user.is_superuser and user.is_staff and user.practice_id is None
    assert user.roles == {"platform_auditor"}
    events = AuditEvent.objects.filter(account=user).order_by("id")
    assert [(e.kind, e.actor_id) for e in events] == [
        (kinds.ACCOUNT_CREATED.code, None),
        (kinds.PLATFORM_ADMINISTRATOR_GRANTED.code, None),
    ]
    assert events[0].details == "Account created for user Pat Admin with role platform_auditor"
    # No one is signed in at the console: the server login that ran it is recorded.
    assert events[1].data["operator"].count("@") == 1
    assert events[1].data["via"] == "manage.py createsuperuser"
    # Its PINs and profile come with it, as with every account.
    assert user.pins and user.staff_profile


def test_django_s_variables_and_prompts_give_what_the_options_leave_out(db, monkeypatch):
    for name, value in {
        "USERNAME": "sam.ops",
        "EMAIL": "sam@platform.example",
        "FIRST_NAME": "Sam",
        "LAST_NAME": "Ops",
        "PASSWORD": "a-long-console-Pass-2031",
    }.items():
        monkeypatch.setenv(f"DJANGO_SUPERUSER_{name}", value)
    call_command("createsuperuser", "--noinput", "--role=support_agent")
    assert User.objects.get(username="sam.ops").roles == {"support_agent"}
    # Interactive: asked for, and the password twice.
    answers = iter(["kim.ops", "kim@platform.example", "Kim", "Ops"])
    monkeypatch.setattr("builtins.input", lambda prompt: next(answers))
    monkeypatch.setattr("getpass.getpass", lambda prompt: "another-long-Pass-2032")
    call_command("createsuperuser")
    assert User.objects.get(username="kim.ops").is_superuser


def test_a_taken_username_is_refused_before_the_password_is_asked(db, monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-console-Pass-2031")
    call_command("createsuperuser", *ADMIN)

    def never(prompt):
        raise AssertionError("asked for a password")

    monkeypatch.setattr("getpass.getpass", never)
    with pytest.raises(CommandError, match="is taken"):
        call_command("createsuperuser", *ADMIN[:-1])  # interactive
    assert User.objects.filter(username="pat.admin").count() == 1


@pytest.mark.parametrize(
    ("extra", "password", "message"),
    [
        ([], "short", "too short"),
        ([], "", "Set DJANGO_SUPERUSER_PASSWORD"),
        (["--role=nurse"], "a-long-console-Pass-2031", "invalid choice"),
    ],
)
def test_a_platform_administrator_refused_is_not_created(db, monkeypatch, extra, password, message):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", password)
    with pytest.raises(CommandError, match=message):
        call_command("createsuperuser", *ADMIN, *extra)
    assert not User.objects.filter(username="pat.admin").exists()
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("axes_reset", []),
        ("axes_reset_username", ["dorothy"]),
        ("axes_reset_ip", ["192.0.2.10"]),
        ("axes_reset_ip_username", ["192.0.2.10", "dorothy"]),
        ("changepassword", ["dorothy"]),
        ("addstatictoken", ["dorothy"]),
    ],
)
def test_the_libraries_commands_that_change_sign_in_unrecorded_are_refused(provider, command, args):
    fail(Client(), 5)
    attempts = AccessAttempt.objects.count()
    password = User.objects.get(pk=provider.pk).password
    with pytest.raises(CommandError, match=r"Not run: .* audit log"):
        call_command(command, *args)
    assert sign_in_locked_until(username="dorothy", ip="192.0.2.10") is not None
    assert AccessAttempt.objects.count() == attempts
    assert User.objects.get(pk=provider.pk).password == password
    assert not StaticDevice.objects.filter(user=provider).exists()
