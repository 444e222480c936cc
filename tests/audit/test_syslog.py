"""Copies of audit events for outside receivers: ATNA XML, ECS JSON, RFC 5424/5425, TLS.

The network tests run a real TLS receiver on 127.0.0.1 (tests/syslog_receiver.py)
with certificates made here, and send to it with the real sender.
"""

import base64
import json
import re
import socket
import ssl
import threading
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest
from fhir.resources.R4B.auditevent import AuditEvent as FhirAuditEvent
from hypothesis import given
from hypothesis import strategies as st

from audit import atna, ecs, fhir, hashing, kinds
from audit.atna import EVENT_KEYS, KIND_CODES, Outcome, atna_message
from audit.ecs import ECS_CATEGORIES, ecs_line
from audit.fhir import fhir_audit_event
from audit.kinds import KINDS, Action
from audit.models import AuditEvent
from audit.services import audit_event_record
from audit.syslog import (
    BOM,
    SyslogSendError,
    SyslogTlsSender,
    atna_syslog_message,
    audit_structured_data,
    ecs_syslog_message,
    octet_frame,
    parse_tls_url,
    sd_element,
    syslog_message,
)
from tests.syslog_receiver import SyslogReceiver, make_pki


def parse_xml(message: bytes) -> ET.Element:
    return ET.fromstring(message)  # noqa: S314  (the message this test built)


def make_event(**changes) -> dict:
    """An event dict as `AuditEvent.objects.values(*EVENT_KEYS)` returns it."""
    event = {
        "chain_id": 7,
        "seq": 42,
        "occurred_at": datetime(2026, 3, 14, 9, 26, 53, 589793, tzinfo=UTC),
        "actor_ref": 11,
        "actor_label": "496094 (dorothy Ludwig)",
        "account_ref": 11,
        "account_label": "496094 (dorothy Ludwig)",
        "practice_id": 3,
        "patient_id": "",
        "patient_name": "",
        "kind": kinds.SIGNED_IN.code,
        "type": kinds.SIGNED_IN.type.value,
        "action": kinds.SIGNED_IN.action.value,
        "details": "Signed in as user dorothy Ludwig",
        "ip": "203.0.113.9",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
        "request_id": "9f2c4e6a8b0d4f1e",
        "data": {},
        "prev_hash": "a" * 64,
        "row_hash": "b" * 64,
    }
    kind = KINDS.get(changes.get("kind", event["kind"]))
    if kind is not None and "kind" in changes:
        event.update(type=kind.type.value, action=kind.action.value)
    event.update(changes)
    assert set(event) == set(EVENT_KEYS)
    return event


def attributes(root: ET.Element, path: str) -> dict:
    element = root.find(path)
    assert element is not None, path
    return element.attrib


def object_with_role(root: ET.Element, role: str) -> ET.Element:
    found = [
        element
        for element in root.findall("ParticipantObjectIdentification")
        if element.get("ParticipantObjectTypeCodeRole") == role
    ]
    assert len(found) == 1, role
    return found[0]


def object_details(element: ET.Element) -> dict[str, str]:
    return {
        detail.get("type"): base64.b64decode(detail.get("value")).decode()
        for detail in element.findall("ParticipantObjectDetail")
    }


HEADER = re.compile(
    rb"<(?P<pri>\d{1,3})>1 (?P<timestamp>\S+) (?P<hostname>\S+) (?P<app>\S+) (?P<procid>\S+) "
    rb"(?P<msgid>\S+) (?P<sd>-|(?:\[(?:[^\]\\]|\\.)*\])+) (?P<msg>.*)",
    re.DOTALL,
)


def parse_syslog(message: bytes) -> dict:
    match = HEADER.fullmatch(message)
    assert match, message[:120]
    return match.groupdict()


# The tables


def test_every_kind_has_one_outcome_and_one_ecs_category():
    assert set(KIND_CODES) == set(KINDS)
    assert set(ECS_CATEGORIES) == set(KINDS)


def test_every_kind_has_an_event_action_code():
    for code, kind in KINDS.items():
        codes = KIND_CODES[code]
        if kind.action == Action.NOT_SPECIFIED:
            assert codes.action in {"C", "R", "U", "D", "E"}, code
        else:
            # A kind with an Action takes its code from it; a second one would disagree.
            assert codes.action is None, code
            assert atna.ACTION_CODES[kind.action] in {"C", "R", "U", "D", "E"}


FAILURE_WORDS = ("failed", "refused", "interrupted", "_locked", "_blocked")


def test_kinds_that_say_they_failed_are_failures_and_the_others_successes():
    for code, codes in KIND_CODES.items():
        failed = any(word in code for word in FAILURE_WORDS)
        assert (codes.outcome != Outcome.SUCCESS) == failed, code


@pytest.mark.parametrize(
    ("kind", "outcome", "ecs_outcome"),
    [
        (kinds.SIGNED_IN, "0", "success"),
        (kinds.SIGN_IN_FAILED, "4", "failure"),  # a wrong password: try again
        (kinds.SUPPORT_PIN_VALIDATION_FAILED, "4", "failure"),
        (kinds.SIGN_IN_REFUSED_LOCKED, "8", "failure"),  # refused: a lock stands
        (kinds.AUDIT_EXPORT_FAILED, "8", "failure"),
        (kinds.SIGN_IN_LOCKED, "12", "failure"),  # sign-in made unavailable
        (kinds.SUPPORT_PIN_VALIDATION_BLOCKED, "12", "failure"),
        (kinds.SIGN_IN_UNLOCKED, "0", "success"),
    ],
)
def test_outcome_is_the_same_in_atna_and_ecs(kind, outcome, ecs_outcome):
    event = make_event(kind=kind.code)
    root = parse_xml(atna_message(event, audit_source_id="ehr-web-1"))
    assert attributes(root, "EventIdentification")["EventOutcomeIndicator"] == outcome
    assert json.loads(ecs_line(event))["event"]["outcome"] == ecs_outcome


# ATNA


def test_atna_message_of_a_sign_in():
    event = make_event()
    message = atna_message(event, audit_source_id="ehr-web-1")
    assert message.startswith(b"<?xml version='1.0' encoding='UTF-8'?>\n<AuditMessage>")
    root = parse_xml(message)
    assert [child.tag for child in root] == [
        "EventIdentification",
        "ActiveParticipant",
        "AuditSourceIdentification",
        "ParticipantObjectIdentification",
        "ParticipantObjectIdentification",
    ]
    assert attributes(root, "EventIdentification") == {
        "EventDateTime": "2026-03-14T09:26:53.589793Z",
        "EventOutcomeIndicator": "0",
        "EventActionCode": "E",
    }
    assert attributes(root, "EventIdentification/EventID") == {
        "csd-code": "110114",
        "codeSystemName": "DCM",
        "originalText": "User Authentication",
    }
    types = [e.attrib for e in root.findall("EventIdentification/EventTypeCode")]
    assert types == [
        {"csd-code": "110122", "codeSystemName": "DCM", "originalText": "Login"},
        {
            "csd-code": "security.signed_in",
            "codeSystemName": "EHR-Audit",
            "originalText": "security.signed_in",
        },
    ]
    assert root.findtext("EventIdentification/EventOutcomeDescription") == event["details"]
    assert attributes(root, "ActiveParticipant") == {
        "UserID": "11",
        "UserName": "496094 (dorothy Ludwig)",
        "UserIsRequestor": "true",
        "NetworkAccessPointID": "203.0.113.9",
        "NetworkAccessPointTypeCode": "2",
    }
    assert attributes(root, "AuditSourceIdentification") == {
        "AuditSourceID": "ehr-web-1",
        "AuditEnterpriseSiteID": "3",
    }
    assert attributes(root, "AuditSourceIdentification/AuditSourceTypeCode") == {"csd-code": "4"}

    account = object_with_role(root, "11")
    assert account.attrib == {
        "ParticipantObjectID": "11",
        "ParticipantObjectTypeCode": "1",
        "ParticipantObjectTypeCodeRole": "11",
    }
    assert attributes(account, "ParticipantObjectIDTypeCode") == {
        "csd-code": "11",
        "codeSystemName": "RFC-3881",
        "originalText": "User Identifier",
    }
    assert account.findtext("ParticipantObjectName") == "496094 (dorothy Ludwig)"

    record = object_with_role(root, "13")
    assert record.get("ParticipantObjectID") == "7.42"
    assert record.get("ParticipantObjectTypeCode") == "2"
    assert object_details(record) == {
        "chain": "7",
        "seq": "42",
        "prev_hash": "a" * 64,
        "row_hash": "b" * 64,
        "kind": "security.signed_in",
        "practice": "3",
        "request_id": "9f2c4e6a8b0d4f1e",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
        "details": "Signed in as user dorothy Ludwig",
    }


def test_atna_failed_sign_in_is_a_minor_failure_by_an_anonymous_requestor():
    event = make_event(
        kind=kinds.SIGN_IN_FAILED.code,
        actor_ref=None,
        actor_label="",
        details="Failed sign-in for user dorothy Ludwig",
    )
    root = parse_xml(atna_message(event, audit_source_id="ehr-web-1"))
    assert attributes(root, "EventIdentification")["EventOutcomeIndicator"] == "4"
    assert attributes(root, "ActiveParticipant") == {
        "UserID": "anonymous",
        "UserIsRequestor": "true",
        "NetworkAccessPointID": "203.0.113.9",
        "NetworkAccessPointTypeCode": "2",
    }
    assert object_with_role(root, "11").get("ParticipantObjectID") == "11"


def test_atna_event_of_the_application_itself():
    event = make_event(
        kind=kinds.SUPPORT_PIN_VALIDATION_LOCKED.code,
        actor_ref=None,
        actor_label="",
        ip=None,
        request_id="",
        user_agent="",
        data={"failures": 5},
    )
    root = parse_xml(atna_message(event, audit_source_id="ehr-worker-2"))
    assert attributes(root, "EventIdentification") == {
        "EventDateTime": "2026-03-14T09:26:53.589793Z",
        "EventOutcomeIndicator": "12",
        "EventActionCode": "U",
    }
    assert attributes(root, "EventIdentification/EventID")["csd-code"] == "110113"
    assert attributes(root, "ActiveParticipant") == {
        "UserID": "ehr-worker-2",
        "UserIsRequestor": "true",
    }
    assert attributes(root, "ActiveParticipant/RoleIDCode")["csd-code"] == "110150"
    details = object_details(object_with_role(root, "13"))
    assert "request_id" not in details and "user_agent" not in details
    assert json.loads(details["data"]) == {"failures": 5}


def test_atna_patient_record():
    event = make_event(
        kind=kinds.PATIENT_CHART_VIEWED.code,
        patient_id="MRN-0042",
        patient_name="Zoë O'Brien",
        details="Chart viewed for patient Zoë O'Brien",
    )
    root = parse_xml(atna_message(event, audit_source_id="ehr-web-1"))
    assert attributes(root, "EventIdentification")["EventActionCode"] == "R"
    assert attributes(root, "EventIdentification/EventID")["csd-code"] == "110110"
    patient = object_with_role(root, "1")
    assert patient.attrib == {
        "ParticipantObjectID": "MRN-0042",
        "ParticipantObjectTypeCode": "1",
        "ParticipantObjectTypeCodeRole": "1",
    }
    assert attributes(patient, "ParticipantObjectIDTypeCode")["csd-code"] == "2"
    assert patient.findtext("ParticipantObjectName") == "Zoë O'Brien"


def test_atna_kind_without_a_dicom_code_uses_its_own():
    root = parse_xml(atna_message(make_event(kind=kinds.SUPPORT_PIN_VIEWED.code)))
    assert attributes(root, "EventIdentification/EventID") == {
        "csd-code": "support_pin.viewed",
        "codeSystemName": "EHR-Audit",
        "originalText": "support_pin.viewed",
    }
    assert attributes(root, "EventIdentification")["EventActionCode"] == "R"
    # The host name is the audit source when the caller names none.
    assert attributes(root, "AuditSourceIdentification")["AuditSourceID"] == socket.gethostname()


def test_atna_refuses_a_kind_it_does_not_know_and_ecs_says_unknown():
    event = make_event(kind="security.from_a_newer_release")
    with pytest.raises(atna.UnknownKindError, match="from_a_newer_release"):
        atna_message(event)
    document = json.loads(ecs_line(event))
    assert document["event"]["outcome"] == "unknown"
    assert "category" not in document["event"]
    assert parse_syslog(ecs_syslog_message(event, hostname="h"))["pri"] == b"85"


SPECIAL = "<b>&amp;</b> \"quoted\" 'single' ]]> Zoë Ünal 漢字 😀\ttab\nline"


def test_xml_special_and_non_ascii_text_survives():
    event = make_event(
        actor_label=SPECIAL,
        account_label=SPECIAL,
        details=SPECIAL,
        patient_id="P&1<2>",
        patient_name=SPECIAL,
        user_agent=SPECIAL,
    )
    message = atna_message(event, audit_source_id="ehr-web-1")
    message.decode("utf-8")  # valid UTF-8
    root = parse_xml(message)
    assert attributes(root, "ActiveParticipant")["UserName"] == SPECIAL
    assert root.findtext("EventIdentification/EventOutcomeDescription") == SPECIAL
    assert object_with_role(root, "11").findtext("ParticipantObjectName") == SPECIAL
    patient = object_with_role(root, "1")
    assert patient.get("ParticipantObjectID") == "P&1<2>"
    assert patient.findtext("ParticipantObjectName") == SPECIAL
    details = object_details(object_with_role(root, "13"))
    assert details["details"] == details["user_agent"] == SPECIAL

    document = json.loads(ecs_line(event))
    assert document["message"] == SPECIAL
    assert document["user"]["name"] == SPECIAL
    assert document["ehr"]["patient"] == {"id": "P&1<2>", "name": SPECIAL}


def test_characters_xml_cannot_carry_are_replaced_and_kept_in_the_base64_details():
    details = "bell\x07 null\x00 escape\x1b end"
    root = parse_xml(atna_message(make_event(details=details, actor_label="a\x0bb")))
    shown = root.findtext("EventIdentification/EventOutcomeDescription")
    assert shown == "bell\ufffd null\ufffd escape\ufffd end"
    assert attributes(root, "ActiveParticipant")["UserName"] == "a\ufffdb"
    assert object_details(object_with_role(root, "13"))["details"] == details
    assert json.loads(ecs_line(make_event(details=details)))["message"] == details


@given(text=st.text(max_size=300))
def test_any_text_gives_well_formed_xml_and_one_json_line(text):
    event = make_event(
        details=text, actor_label=text, account_label=text, user_agent=text, patient_name=text
    )
    root = parse_xml(atna_message(event, audit_source_id="ehr-web-1"))
    shown = root.findtext("EventIdentification/EventOutcomeDescription") or ""
    # XML parsers read every line end in text as LF (XML 1.0, 2.11); the details are exact.
    assert shown == atna.xml_text(text).replace("\r\n", "\n").replace("\r", "\n")
    assert object_details(object_with_role(root, "13"))["details"] == text
    line = ecs_line(event)
    assert b"\n" not in line and b"\r" not in line
    document = json.loads(line)
    assert document.get("message", "") == text


# ECS


def test_ecs_line_of_a_sign_in():
    line = ecs_line(make_event())
    assert line.count(b"\n") == 0
    assert json.loads(line) == {
        "@timestamp": "2026-03-14T09:26:53.589793Z",
        "ecs": {"version": ecs.ECS_VERSION},
        "event": {
            "kind": "event",
            "category": ["authentication"],
            "type": ["start"],
            "action": "security.signed_in",
            "outcome": "success",
            "sequence": 42,
            "id": "7.42",
            "dataset": "ehr.audit",
        },
        "message": "Signed in as user dorothy Ludwig",
        "user": {
            "id": "11",
            "name": "496094 (dorothy Ludwig)",
            "target": {"id": "11", "name": "496094 (dorothy Ludwig)"},
        },
        "related": {"user": ["11", "496094 (dorothy Ludwig)"], "ip": ["203.0.113.9"]},
        "source": {"ip": "203.0.113.9"},
        "user_agent": {"original": "Mozilla/5.0 (X11; Linux x86_64)"},
        "organization": {"id": "3"},
        "http": {"request": {"id": "9f2c4e6a8b0d4f1e"}},
        "ehr": {
            "audit": {
                "chain_id": 7,
                "seq": 42,
                "prev_hash": "a" * 64,
                "row_hash": "b" * 64,
                "type": "Security",
                "action": "Login",
            }
        },
    }


def test_ecs_line_of_a_system_event_leaves_out_what_it_does_not_have():
    event = make_event(
        kind=kinds.BREAK_GLASS_EXPIRED.code,
        actor_ref=None,
        actor_label="",
        account_ref=12,
        account_label="dori (Dori User)",
        practice_id=None,
        ip=None,
        user_agent="",
        request_id="",
        patient_id="MRN-7",
        patient_name="",
        data={"grant": 5, "note": ""},
    )
    document = json.loads(ecs_line(event))
    assert document["event"]["category"] == ["iam"]
    assert document["event"]["type"] == ["admin", "deletion"]
    assert document["user"] == {"target": {"id": "12", "name": "dori (Dori User)"}}
    assert document["related"] == {"user": ["12", "dori (Dori User)"]}
    for absent in ("source", "user_agent", "organization", "http"):
        assert absent not in document
    assert document["ehr"]["patient"] == {"id": "MRN-7"}
    # The event's data goes out as written, empty values included.
    assert document["ehr"]["audit"]["data"] == {"grant": 5, "note": ""}


def test_ecs_failure():
    event = make_event(kind=kinds.MFA_FAILED.code, ip="2001:db8::5")
    document = json.loads(ecs_line(event))
    assert document["event"]["outcome"] == "failure"
    assert document["source"] == {"ip": "2001:db8::5"}


# RFC 5424 and 5425


def test_atna_syslog_message_header():
    message = atna_syslog_message(
        make_event(), hostname="ehr-web-1.example.org", procid="4242", enterprise_number=32473
    )
    fields = parse_syslog(message)
    assert fields == {
        "pri": b"85",  # facility 10 (authpriv) * 8 + severity 5 (notice)
        "timestamp": b"2026-03-14T09:26:53.589793Z",
        "hostname": b"ehr-web-1.example.org",
        "app": b"ehr",
        "procid": b"4242",
        "msgid": b"IHE+RFC-3881",
        "sd": b'[ehr-audit@32473 chain="7" seq="42"]',
        "msg": fields["msg"],
    }
    assert fields["msg"].startswith(BOM + b"<?xml")
    root = parse_xml(fields["msg"][len(BOM) :])
    assert attributes(root, "AuditSourceIdentification")["AuditSourceID"] == "ehr-web-1.example.org"


@pytest.mark.parametrize(
    ("kind", "pri"),
    [
        (kinds.SIGNED_IN, b"85"),  # notice
        (kinds.SIGN_IN_FAILED, b"84"),  # warning
        (kinds.SIGN_IN_REFUSED_LOCKED, b"84"),  # warning
        (kinds.SIGN_IN_LOCKED, b"83"),  # error
    ],
)
def test_severity_follows_the_outcome(kind, pri):
    message = ecs_syslog_message(make_event(kind=kind.code), hostname="h", procid="1")
    assert parse_syslog(message)["pri"] == pri


def test_json_syslog_message_header():
    fields = parse_syslog(ecs_syslog_message(make_event(), hostname="ehr-web-1"))
    assert fields["msgid"] == b"AUDIT"
    assert fields["sd"] == b"-"  # no enterprise number, no SD-ID of our own
    assert fields["procid"].isdigit()  # this process by default
    assert not fields["msg"].startswith(BOM)
    assert json.loads(fields["msg"])["event"]["sequence"] == 42


def test_structured_data_escapes_its_values():
    element = sd_element("x@32473", iter([("a", 'say "hi" ] \\ end')]))
    assert element == '[x@32473 a="say \\"hi\\" \\] \\\\ end"]'
    with pytest.raises(ValueError, match="SD-NAME"):
        sd_element("bad name", [])
    with pytest.raises(ValueError, match="SD-NAME"):
        sd_element("x@1", [("a=b", "v")])
    assert audit_structured_data(make_event(), enterprise_number=None) == "-"
    with pytest.raises(ValueError, match="enterprise"):
        audit_structured_data(make_event(), enterprise_number=0)


def test_header_fields_are_checked():
    common = {"severity": 5, "timestamp": "2026-03-14T09:26:53Z", "msgid": "AUDIT"}
    message = syslog_message(b"x", hostname="", procid="", **common)
    assert message == b"<85>1 2026-03-14T09:26:53Z - ehr - AUDIT - x"
    for bad in ("two words", "caf\u00e9", "x" * 256):
        with pytest.raises(ValueError, match="HOSTNAME"):
            syslog_message(b"x", hostname=bad, **common)
    with pytest.raises(ValueError, match="MSGID"):
        syslog_message(
            b"x", hostname="h", severity=5, timestamp=common["timestamp"], msgid="M" * 33
        )
    with pytest.raises(ValueError, match="timestamp"):
        syslog_message(b"x", hostname="h", severity=5, timestamp="2026-03-14 09:26", msgid="A")
    with pytest.raises(ValueError, match="severity"):
        syslog_message(b"x", hostname="h", severity=8, timestamp=common["timestamp"], msgid="A")


def test_octet_frame_counts_octets_not_characters():
    message = "Zoë 漢".encode()
    assert octet_frame(message) == b"8 " + message


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("tls://logs.example.org:6514", ("logs.example.org", 6514)),
        ("tls://127.0.0.1:10514", ("127.0.0.1", 10514)),
        ("tls://[2001:db8::1]:6514", ("2001:db8::1", 6514)),
        ("tls://logs.example.org", ("logs.example.org", 6514)),
    ],
)
def test_receiver_url(url, expected):
    assert parse_tls_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "tcp://logs.example.org:514",
        "udp://logs.example.org:514",
        "logs.example.org:6514",
        "tls://:6514",
        "tls://logs.example.org:port",
        "tls://logs.example.org:6514/path",
        "tls://user@logs.example.org:6514",
    ],
)
def test_receiver_url_refuses_anything_but_tls(url):
    with pytest.raises(ValueError, match="syslog receiver URL"):
        parse_tls_url(url)


# Real events


EVENT_FIELDS_OF_THE_MODEL = {field.attname for field in AuditEvent._meta.concrete_fields} | {
    "chain_id"
}


def test_event_keys_are_columns_of_the_model():
    assert set(EVENT_KEYS) <= EVENT_FIELDS_OF_THE_MODEL | {"actor_ref", "account_ref"}


@pytest.mark.django_db
def test_messages_of_events_read_back_from_the_database(provider, agent):
    audit_event_record(kind=kinds.SIGNED_IN, acting_user=provider, account=provider, ip="::1")
    audit_event_record(
        kind=kinds.SUPPORT_PIN_VALIDATION_FAILED, acting_user=agent, account=provider, ip="10.0.0.8"
    )
    rows = list(AuditEvent.objects.order_by("id").values(*EVENT_KEYS))
    assert [row["kind"] for row in rows][-2:] == [
        "security.signed_in",
        "support_pin.validation_failed",
    ]
    signed_in, failed = rows[-2:]
    for row in (signed_in, failed):
        assert hashing.row_hash(row, prev_hash=row["prev_hash"]) == row["row_hash"]
    root = parse_xml(atna_message(failed, audit_source_id="ehr-web-1"))
    assert attributes(root, "EventIdentification")["EventOutcomeIndicator"] == "4"
    assert attributes(root, "EventIdentification")["EventDateTime"] == hashing.timestamp(
        failed["occurred_at"]
    )
    assert attributes(root, "ActiveParticipant")["UserID"] == str(agent.pk)
    assert attributes(root, "ActiveParticipant")["NetworkAccessPointID"] == "10.0.0.8"
    assert object_with_role(root, "11").get("ParticipantObjectID") == str(provider.pk)
    details = object_details(object_with_role(root, "13"))
    assert details["chain"] == str(failed["chain_id"])
    assert details["seq"] == str(failed["seq"]) == str(signed_in["seq"] + 1)
    assert details["prev_hash"] == signed_in["row_hash"]
    assert details["row_hash"] == failed["row_hash"]

    document = json.loads(ecs_line(signed_in))
    assert document["user"]["id"] == str(provider.pk)
    assert document["user"]["name"] == "496094 (dorothy Ludwig)"
    assert document["organization"]["id"] == str(provider.practice_id)
    assert document["source"]["ip"] == "::1"
    assert document["ehr"]["audit"]["row_hash"] == signed_in["row_hash"]


# Over TLS


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def receiver(pki):
    with SyslogReceiver(pki.server_cert, pki.server_key) as running:
        yield running


def test_frames_arrive_once_and_in_order(receiver, pki):
    messages = [
        ecs_syslog_message(make_event(seq=seq, details=f"event {seq}"), hostname="h")
        for seq in range(1, 31)
    ]
    with SyslogTlsSender(receiver.url, pki.ca, timeout=5) as sender:
        for start in range(0, 30, 10):
            sender.send([octet_frame(m) for m in messages[start : start + 10]])
        assert receiver.wait_for_messages(30) == messages
    assert receiver.wait_for(lambda r: r.closed == 1)
    assert receiver.messages == messages  # nothing more, nothing twice
    assert receiver.connections == 1
    assert receiver.framing_errors == []


@pytest.mark.django_db
def test_atna_and_json_of_a_real_event_over_tls(receiver, pki, provider):
    audit_event_record(
        kind=kinds.SIGN_IN_FAILED,
        acting_user=None,
        account=provider,
        ip="198.51.100.4",
    )
    row = AuditEvent.objects.order_by("-id").values(*EVENT_KEYS)[0]
    frames = [
        octet_frame(atna_syslog_message(row, hostname="ehr-web-1", enterprise_number=32473)),
        octet_frame(ecs_syslog_message(row, hostname="ehr-web-1")),
    ]
    with SyslogTlsSender(receiver.url, pki.ca, timeout=5) as sender:
        sender.send(frames)
        atna_received, json_received = receiver.wait_for_messages(2)
    atna_fields = parse_syslog(atna_received)
    assert atna_fields["pri"] == b"84"
    assert atna_fields["msgid"] == b"IHE+RFC-3881"
    assert (
        atna_fields["sd"]
        == f'[ehr-audit@32473 chain="{row["chain_id"]}" seq="{row["seq"]}"]'.encode()
    )
    root = parse_xml(atna_fields["msg"].removeprefix(BOM))
    assert attributes(root, "EventIdentification")["EventOutcomeIndicator"] == "4"
    assert attributes(root, "ActiveParticipant")["UserID"] == "anonymous"
    assert root.findtext("EventIdentification/EventOutcomeDescription") == row["details"]
    json_fields = parse_syslog(json_received)
    document = json.loads(json_fields["msg"])
    assert document["event"]["outcome"] == "failure"
    assert document["event"]["sequence"] == row["seq"]
    assert document["user"]["target"]["id"] == str(provider.pk)


def test_non_ascii_arrives_intact(receiver, pki):
    message = atna_syslog_message(make_event(details=SPECIAL), hostname="h")
    with SyslogTlsSender(receiver.url, pki.ca, timeout=5) as sender:
        sender.send([octet_frame(message)])
        (received,) = receiver.wait_for_messages(1)
    assert received == message
    root = parse_xml(parse_syslog(received)["msg"].removeprefix(BOM))
    assert root.findtext("EventIdentification/EventOutcomeDescription") == SPECIAL


def test_a_receiver_signed_by_another_ca_is_refused(receiver, pki):
    with (
        SyslogTlsSender(receiver.url, pki.other_ca, timeout=5) as sender,
        pytest.raises(SyslogSendError, match="certificate verification"),
    ):
        sender.send([octet_frame(b"secret")])
    assert receiver.wait_for(lambda r: r.handshake_errors)
    assert receiver.messages == []
    assert receiver.connections == 0


def test_the_receiver_must_carry_the_host_name(pki):
    with SyslogReceiver(pki.wrong_name_cert, pki.wrong_name_key) as other:
        with (
            SyslogTlsSender(other.url, pki.ca, timeout=5) as sender,
            pytest.raises(SyslogSendError, match="IP address mismatch"),
        ):
            sender.send([octet_frame(b"secret")])
        assert other.wait_for(lambda r: r.handshake_errors)
        assert other.messages == []


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_mutual_tls(pki, version):
    with SyslogReceiver(
        pki.server_cert, pki.server_key, client_ca=pki.ca, max_version=version
    ) as mutual:
        with (
            SyslogTlsSender(mutual.url, pki.ca, timeout=5) as anonymous,
            pytest.raises(SyslogSendError, match=r"handshake|certificate"),
        ):
            anonymous.send([octet_frame(b"without a certificate")])
        assert mutual.wait_for(lambda r: r.handshake_errors)
        with SyslogTlsSender(
            mutual.url, pki.ca, cert_file=pki.client_cert, key_file=pki.client_key, timeout=5
        ) as sender:
            sender.send([octet_frame(b"with a certificate")])
            assert mutual.wait_for_messages(1) == [b"with a certificate"]
        assert mutual.messages == [b"with a certificate"]
        assert mutual.versions == [version.name.replace("_", ".")]
        subject = dict(item[0] for item in mutual.peer_certificates[0]["subject"])
        assert subject["commonName"] == "client"


def test_the_next_send_reconnects_after_the_receiver_closed(pki):
    with SyslogReceiver(pki.server_cert, pki.server_key, close_after=1) as closing:
        with SyslogTlsSender(closing.url, pki.ca, timeout=5) as sender:
            sender.send([octet_frame(b"first")])
            assert closing.wait_for(lambda r: r.closed == 1)
            time.sleep(0.05)  # the close reaches the sender
            sender.send([octet_frame(b"second")])
            assert closing.wait_for_messages(2) == [b"first", b"second"]
        assert closing.connections == 2


def test_the_next_send_reconnects_after_close(receiver, pki):
    sender = SyslogTlsSender(receiver.url, pki.ca, timeout=5)
    sender.send([octet_frame(b"one")])
    sender.close()
    sender.close()  # twice is harmless
    sender.send([octet_frame(b"two")])
    sender.close()
    assert receiver.wait_for_messages(2) == [b"one", b"two"]
    assert receiver.wait_for(lambda r: r.connections == 2)


def test_no_frames_no_connection(receiver, pki):
    with SyslogTlsSender(receiver.url, pki.ca) as sender:
        sender.send([])
    time.sleep(0.1)
    assert receiver.connections == 0 and receiver.handshake_errors == []


class PlainListener:
    """A TCP listener on 127.0.0.1 that records the first bytes each client sends."""

    def __init__(self, *, answer: bool):
        self.answer = answer  # False: say nothing, hold the connection
        self.received: list[bytes] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(5)
        self.url = f"tls://127.0.0.1:{self._sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._thread.join(timeout=5)
        self._sock.close()
        assert not self._thread.is_alive()

    def _serve(self):
        conn, _ = self._sock.accept()
        with conn:
            conn.settimeout(5)
            self.received.append(conn.recv(65536))
            if self.answer:
                conn.sendall(b"220 not TLS\r\n")
            else:
                conn.recv(65536)  # until the client gives up and closes


def test_a_plain_tcp_receiver_gets_a_tls_handshake_and_no_message(pki):
    with (
        PlainListener(answer=True) as plain,
        SyslogTlsSender(plain.url, pki.ca, timeout=5) as sender,
        pytest.raises(SyslogSendError, match="TLS handshake"),
    ):
        sender.send([octet_frame(b"secret")])
    (hello,) = plain.received
    assert hello[:1] == b"\x16"  # a TLS handshake record: the ClientHello
    assert b"secret" not in hello


def test_a_silent_receiver_times_out(pki):
    with PlainListener(answer=False) as silent:
        started = time.monotonic()
        with (
            SyslogTlsSender(silent.url, pki.ca, timeout=0.3) as sender,
            pytest.raises(SyslogSendError, match="timed out"),
        ):
            sender.send([octet_frame(b"secret")])
        assert time.monotonic() - started < 3


def test_nobody_listening(pki):
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        port = placeholder.getsockname()[1]
    with (
        SyslogTlsSender(f"tls://127.0.0.1:{port}", pki.ca, timeout=2) as sender,
        pytest.raises(SyslogSendError, match="cannot connect"),
    ):
        sender.send([octet_frame(b"x")])


def test_sender_settings(pki):
    sender = SyslogTlsSender("tls://127.0.0.1:6514", pki.ca)
    assert sender.context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert sender.context.verify_mode == ssl.CERT_REQUIRED
    assert sender.context.check_hostname
    with pytest.raises(ValueError, match="CA file"):
        SyslogTlsSender("tls://127.0.0.1:6514", pki.ca.with_name("missing.pem"))
    with pytest.raises(ValueError, match="certificate"):
        SyslogTlsSender("tls://127.0.0.1:6514", pki.ca, key_file=pki.client_key)
    with pytest.raises(ValueError, match="certificates"):
        SyslogTlsSender("tls://127.0.0.1:6514", pki.ca, cert_file=pki.client_key)


@given(text=st.text(max_size=300))
def test_any_text_gives_a_valid_fhir_audit_event(text):
    event = make_event(
        details=text,
        actor_label=text,
        account_label=text,
        user_agent=text,
        patient_name=text,
        patient_id=text[:64],
    )
    resource = fhir_audit_event(event, source_id="ehr-web-1")  # validated by the model
    FhirAuditEvent.model_validate_json(json.dumps(resource))
    assert resource.get("outcomeDesc", "") in ("", fhir._text(text))
