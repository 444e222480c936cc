import pytest
from django.db import connection, transaction

from accounts.services import provider_profile_update
from audit import kinds
from audit.kinds import KINDS, EventKind
from audit.models import AuditChain, AuditEvent
from audit.services import audit_event_record, user_label
from audit.verification import audit_log_verify
from tests.factories import streamed


def test_event_kind_codes_are_unique():
    codes = [value.code for value in vars(kinds).values() if isinstance(value, EventKind)]
    assert len(codes) == len(set(codes)) == len(KINDS)


# Every placeholder a kind's wording may use; a misspelt one fails here, not in production.
KNOWN_PARAMETERS = {
    "account",
    "rows",
    "events",
    "chains",
    "checkpoint",
    "checkpoints",
    "where",
    "sent",
    "filters",
    "period",  # the validated dates of an audit history, in fixed words
    "patient",
    "failures",
    "count",
    "key_id",
    "grant",
    "minutes",
    "justification",
    "old",
    "role",  # the role an account was created with
    "new",
    "purpose",
    "locks",
    "sessions",  # "session" or "sessions", for the count
    "alert",
    "summary",
    "outcome",
    "note",
    "limit",
    "link",
    "month",  # YYYY-MM of an audit partition or archive
    "moved",
    "counters",  # dashboard counters removed with an archived month
    "destination",  # an outbox destination's name
    "practice",  # a practice's name, in the platform's configuration changes
    "group_id",
    "changes",  # "name changed from A to B; Group ID changed from 1 to 2"
    "specialty",
}


def test_every_kind_fills_its_wording_from_the_account_name():
    from string import Formatter

    for kind in KINDS.values():
        fields = {name for _, name, _, _ in Formatter().parse(kind.template) if name}
        assert fields <= KNOWN_PARAMETERS, (kind.code, fields - KNOWN_PARAMETERS)
        assert "{" not in kind.details({name: "x" for name in fields})


def test_labels_follow_the_seed(provider, nurse):
    assert user_label(provider) == "496094 (dorothy Ludwig)"
    assert user_label(nurse) == "dori (Dori User)"
    assert user_label(None) == ""


def test_record_writes_who_whom_practice_and_wording(provider, agent):
    event = audit_event_record(
        kind=kinds.SIGN_IN_FAILED, acting_user=agent, account=provider, ip="2001:db8::5"
    )
    event.refresh_from_db()
    assert event.actor_id == agent.pk and event.actor_ref == agent.pk
    assert event.account_id == provider.pk and event.account_label == "496094 (dorothy Ludwig)"
    assert event.practice_id == provider.practice_id
    assert (event.type, event.action) == ("Security", "Login")
    assert event.details == "Failed sign-in for user dorothy Ludwig"
    assert event.ip == "2001:db8::5"
    assert event.occurred_at.utcoffset().total_seconds() == 0


def test_record_refuses_anything_but_scalars(provider):
    with pytest.raises(TypeError):
        audit_event_record(
            kind=kinds.SIGNED_IN,
            acting_user=provider,
            account=provider,
            ip=None,
            params={"x": object()},
        )
    with pytest.raises(TypeError):
        audit_event_record(
            kind=kinds.SIGNED_IN,
            acting_user=provider,
            account=provider,
            ip=None,
            data={"x": [1, 2]},
        )


def chain_of(user) -> AuditChain:
    return AuditChain.objects.get(practice_id=user.practice_id)


def test_seq_and_links_form_a_chain(provider):
    audit_event_record(kind=kinds.SIGNED_IN, acting_user=provider, account=provider, ip=None)
    before = chain_of(provider).seq
    first = audit_event_record(
        kind=kinds.SIGNED_IN, acting_user=provider, account=provider, ip=None
    )
    second = audit_event_record(
        kind=kinds.SIGNED_OUT, acting_user=provider, account=provider, ip=None
    )
    assert (first.seq, second.seq) == (before + 1, before + 2)
    assert second.prev_hash == first.row_hash
    head = chain_of(provider)
    assert (head.seq, head.row_hash) == (second.seq, second.row_hash)
    assert first.chain_id == second.chain_id == head.pk
    result = audit_log_verify()
    assert result.problem is None
    assert result.events == AuditEvent.objects.count()


def test_an_event_is_the_lock_and_one_append(provider, django_assert_num_queries):
    """Lock and read the head, then insert, move it and count it: one statement on PostgreSQL."""
    audit_event_record(kind=kinds.SIGNED_IN, acting_user=provider, account=provider, ip=None)
    with django_assert_num_queries(2 if connection.vendor == "postgresql" else 5) as captured:
        audit_event_record(kind=kinds.SIGNED_OUT, acting_user=provider, account=provider, ip=None)
    assert "FOR UPDATE" in captured.captured_queries[0]["sql"] or connection.vendor == "sqlite"


@pytest.mark.postgres_only  # PostgreSQL prepares statements
def test_the_write_path_is_planned_once_per_connection(provider):
    for _ in range(7):
        audit_event_record(kind=kinds.SIGNED_IN, acting_user=provider, account=provider, ip=None)
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [statement for (statement,) in cursor.fetchall()]
    assert any(s.startswith("SELECT id, seq, row_hash FROM audit_auditchain") for s in prepared)
    assert any(s.startswith("WITH moved AS (UPDATE audit_auditchain") for s in prepared)
    assert audit_log_verify().problem is None


def test_a_rolled_back_action_leaves_no_event_and_no_gap(provider):
    audit_event_record(kind=kinds.SIGNED_IN, acting_user=provider, account=provider, ip=None)
    head = chain_of(provider)
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_event_record(kind=kinds.SIGNED_IN, acting_user=provider, account=provider, ip=None)
        raise RuntimeError("the action failed after recording")
    assert chain_of(provider).seq == head.seq
    audit_event_record(kind=kinds.SIGNED_IN, acting_user=provider, account=provider, ip=None)
    assert audit_log_verify().problem is None


def test_fail_closed_when_the_event_cannot_be_written(provider, monkeypatch):
    """If the audit write fails, the change it records does not happen either."""

    def broken(*args, **kwargs):
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr("audit.hashing.row_hash", broken)
    with pytest.raises(RuntimeError, match="audit store unavailable"):
        provider_profile_update(
            profile=provider.provider_profile,
            acting_user=provider,
            changes={"job_title": "Changed"},
            ip=None,
        )
    provider.provider_profile.refresh_from_db()
    assert provider.provider_profile.job_title == ""


def test_request_context_is_recorded(client, provider, password):
    client.post(
        "/accounts/login/",
        {"username": "dorothy", "password": password},
        HTTP_USER_AGENT="Mozilla/5.0 " + "x" * 400,
        REMOTE_ADDR="198.51.100.23",
    )
    event = AuditEvent.objects.filter(kind=kinds.SIGNED_IN.code).latest("seq")
    assert event.ip == "198.51.100.23"
    assert event.user_agent.startswith("Mozilla/5.0") and len(event.user_agent) == 256
    assert len(event.request_id) == 32


def test_sign_in_events(client, provider, password):
    client.post("/accounts/login/", {"username": "dorothy", "password": "wrong-one"})
    client.post("/accounts/login/", {"username": "my-Secret-Passw0rd", "password": "x"})
    client.post("/accounts/login/", {"username": "dorothy", "password": password})
    client.post("/accounts/logout/")
    details = list(AuditEvent.objects.order_by("id").values_list("details", flat=True))[-4:]
    assert details == [
        "Failed sign-in for user dorothy Ludwig",
        "Failed sign-in with an unknown username",
        "Signed in as user dorothy Ludwig",
        "Signed out user dorothy Ludwig",
    ]


def test_no_secret_reaches_any_audit_column(client, provider, password, settings):
    """Passwords (typed right, wrong, or into the username box), keys: none in the log."""
    new_password = "Brand-New-Passw0rd-77"
    typed_in_wrong_box = "Hunter2-Typed-In-Username"
    client.post("/accounts/login/", {"username": typed_in_wrong_box, "password": password})
    client.post("/accounts/login/", {"username": "dorothy", "password": "Wrong-Passw0rd-99"})
    client.post("/accounts/login/", {"username": "dorothy", "password": password})
    client.post(
        "/account/password/",
        {"password": password, "new_password1": new_password, "new_password2": new_password},
    )
    client.post("/account/confirm/", {"password": "Wrong-Passw0rd-99"})
    client.post("/account/confirm/", {"password": new_password})
    export = client.get("/audit/export.csv")
    assert export.status_code == 200
    exported = streamed(export).decode()
    secrets = [
        password,
        new_password,
        typed_in_wrong_box,
        "Wrong-Passw0rd-99",
        settings.SECRET_KEY,
        *(key.hex() for key in settings.AUDIT_HMAC_KEYS.keys.values()),
    ]
    assert AuditEvent.objects.count() >= 7
    for row in AuditEvent.objects.values():
        blob = " ".join(str(value) for value in row.values())
        for secret in secrets:
            assert secret not in blob
    assert "Signed in as user dorothy Ludwig" in exported
    for secret in secrets:
        assert secret not in exported


def test_a_patient_of_no_practice_is_kept_once(db):
    """The database itself: NULL practices differ in the practice's constraint."""
    from django.db import IntegrityError, transaction

    from audit.models import AuditedPatient

    AuditedPatient.objects.create(practice=None, patient_id="P-1", patient_name="Ana Lopez")
    with pytest.raises(IntegrityError), transaction.atomic():
        AuditedPatient.objects.create(practice=None, patient_id="P-1", patient_name="Ana López")
