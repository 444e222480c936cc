"""One audit event as an IHE ATNA audit message (DICOM PS3.15 Annex A.5, formerly RFC 3881).

`atna_message(event)` returns the XML of the `AuditMessage` schema, UTF-8, for
an event as a dict with the keys of `EVENT_KEYS` (`hashing.EVENT_FIELDS` plus
`prev_hash` and `row_hash`: what `AuditEvent.objects.values(*EVENT_KEYS)` or
an evidence file's `event` line holds). It is plain Python apart from the kind
constants, so the outbox worker can call it for any stored event.

What goes where:

- EventIdentification: EventID and EventTypeCode from `KIND_CODES` (DICOM
  `DCM` codes where one fits; the kind's own code, in the code system
  `EHR-Audit`, always as the last EventTypeCode and as the EventID where no
  DICOM code fits), EventActionCode from the event's Action, EventDateTime in
  UTC, EventOutcomeIndicator from `KIND_CODES`, and the Details as
  EventOutcomeDescription.
- ActiveParticipant: whoever acted, the requestor. A user is UserID = the
  user's id (`actor_ref`, which survives renames), UserName = the label the
  report shows. A request nobody had signed in for (a failed sign-in) is
  UserID `anonymous`; an event of the application itself (no user and no
  address, e.g. an automatic lock) is the audit source, with the role
  "Application". The client address is NetworkAccessPointID, type 2 (IP).
- AuditSourceIdentification: AuditSourceID from the caller (the host name by
  default), type 4 (application server), and the practice as
  AuditEnterpriseSiteID.
- ParticipantObjectIdentification: the account concerned (person, role
  "security user entity", a user identifier), the patient (person, role
  "patient", a patient number), and the audit record itself (system object,
  role "security resource", id `chain.seq`) whose ParticipantObjectDetail
  entries carry the chain, the position, the previous and own hash, the kind,
  the request id, the User-Agent and the event's data. A receiver that sees
  chain 7 go from seq 41 to 43 knows it missed one; `prev_hash` of 43 must be
  `row_hash` of 42.

Text the XML cannot carry (control characters other than tab, LF and CR)
becomes U+FFFD in attributes and text; the ParticipantObjectDetail values are
base64 (as the schema asks), so the exact bytes of each value still arrive.
(A reader of the XML also sees every line end in text as LF, XML 1.0 2.11.)
"""

import base64
import json
import re
import socket
import xml.etree.ElementTree as ET  # builds XML, parses none  # nosec B405
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

from audit import hashing
from audit.kinds import Action

EVENT_KEYS = (*hashing.EVENT_FIELDS, "prev_hash", "row_hash")

PROJECT_CODE_SYSTEM = "EHR-Audit"  # codeSystemName of the project's own codes (the kind codes)
ANONYMOUS_USER_ID = "anonymous"  # UserID of a requestor who had not signed in; user ids are digits


class Outcome(IntEnum):
    """EventOutcomeIndicator of DICOM PS3.15 A.5.2, with its examples."""

    SUCCESS = 0
    MINOR_FAILURE = 4  # action restarted: a wrong password on a first try
    SERIOUS_FAILURE = 8  # action terminated: a wrong password after too many tries
    MAJOR_FAILURE = 12  # action made unavailable: an account locked after repeated failures


class Code(NamedTuple):
    """A coded value: `csd-code`, `codeSystemName`, `originalText`."""

    code: str
    system: str
    text: str


def _dcm(code: str, text: str) -> Code:
    return Code(code, "DCM", text)


# DICOM PS3.16 CID 400 (EventID) and CID 401 (EventTypeCode).
AUDIT_LOG_USED = _dcm("110101", "Audit Log Used")
PATIENT_RECORD = _dcm("110110", "Patient Record")
SECURITY_ALERT = _dcm("110113", "Security Alert")
USER_AUTHENTICATION = _dcm("110114", "User Authentication")
LOGIN = _dcm("110122", "Login")
LOGOUT = _dcm("110123", "Logout")
EMERGENCY_OVERRIDE_STARTED = _dcm("110127", "Emergency Override Started")
SECURITY_CONFIGURATION = _dcm("110129", "Security Configuration")
SOFTWARE_CONFIGURATION = _dcm("110131", "Software Configuration")
USE_OF_RESTRICTED_FUNCTION = _dcm("110132", "Use of Restricted Function")
SECURITY_ROLES_CHANGED = _dcm("110136", "Security Roles Changed")
USER_SECURITY_ATTRIBUTES_CHANGED = _dcm("110137", "User Security Attributes Changed")
EMERGENCY_OVERRIDE_STOPPED = _dcm("110138", "Emergency Override Stopped")
APPLICATION = _dcm("110150", "Application")  # RoleIDCode (CID 402) of the application itself


@dataclass(frozen=True)
class KindCodes:
    """How one kind reads in ATNA (and, for the outcome, in every other format).

    `event_id` None: no DICOM EventID fits, the kind's own code is the EventID.
    `action` is the EventActionCode for kinds whose Action is "Not specified".
    """

    outcome: Outcome
    event_id: Code | None
    event_type: Code | None = None
    action: str | None = None


OK, MINOR, SERIOUS, MAJOR = (
    Outcome.SUCCESS,
    Outcome.MINOR_FAILURE,
    Outcome.SERIOUS_FAILURE,
    Outcome.MAJOR_FAILURE,
)
UA, SA = USER_AUTHENTICATION, SECURITY_ALERT
ATTRIBUTES = USER_SECURITY_ATTRIBUTES_CHANGED

# Every kind's outcome and codes, the one table the ATNA, JSON and syslog formats
# read (a test checks that it covers audit/kinds.py exactly). Outcomes follow DICOM's
# own examples (PS3.15 A.5.2):
# - 0: it happened as asked, including the application doing its job (an automatic
#   sign-out, a grant expiring, a lock lifted).
# - 4: a try that failed and may be tried again: a wrong password, PIN or code, a
#   change refused for a wrong password, a download the client closed.
# - 8: refused without trying, because a lock or block from earlier failures stands
#   (DICOM: "invalid password with excess retries"); an export cut off by an error.
# - 12: the failures made the function unavailable: sign-in or PIN validation locked
#   or blocked (DICOM: "user account disabled due to excessive invalid log-on
#   attempts"). The failure that tipped it is recorded just before, as a 4.
# EventIDs: User Authentication for sign-in, sign-out, second factor, password
# prompts and Support PIN validation (the PIN authenticates a caller); Security
# Alert for changes to an account's security attributes, roles, keys, the
# platform's configuration (practices, specialties) and break-glass access; Audit Log Used for exports of the log; Patient Record for a
# chart. Viewing one's own PIN, a profile edit and a break-glass review have no
# DICOM code and use the kind's.
KIND_CODES: dict[str, KindCodes] = {
    "account.created": KindCodes(OK, SA, ATTRIBUTES),
    "account.profile_updated": KindCodes(OK, None),
    "account.practice_changed": KindCodes(OK, SA, ATTRIBUTES),
    "account.administrator_granted": KindCodes(OK, SA, SECURITY_ROLES_CHANGED),
    "account.deactivated": KindCodes(OK, SA, ATTRIBUTES),
    "account.reactivated": KindCodes(OK, SA, ATTRIBUTES),
    "account.role_changed": KindCodes(OK, SA, SECURITY_ROLES_CHANGED),
    "security.password_changed": KindCodes(OK, SA, ATTRIBUTES),
    "security.signed_in": KindCodes(OK, UA, LOGIN),
    "security.sign_in_failed": KindCodes(MINOR, UA, LOGIN),
    "security.sign_in_failed_unknown": KindCodes(MINOR, UA, LOGIN),
    "security.sign_in_locked": KindCodes(MAJOR, UA, LOGIN),
    "security.sign_in_locked_unknown": KindCodes(MAJOR, UA, LOGIN),
    "security.sign_in_refused_locked": KindCodes(SERIOUS, UA, LOGIN),
    "security.sign_in_refused_locked_unknown": KindCodes(SERIOUS, UA, LOGIN),
    "security.sign_in_unlocked": KindCodes(OK, SA, ATTRIBUTES),
    "security.signed_out": KindCodes(OK, UA, LOGOUT),
    "security.signed_out_automatically": KindCodes(OK, UA, LOGOUT),
    "security.mfa_enrolled": KindCodes(OK, SA, ATTRIBUTES),
    "security.mfa_removed": KindCodes(OK, SA, ATTRIBUTES),
    "security.mfa_backup_codes_replaced": KindCodes(OK, SA, ATTRIBUTES),
    "security.mfa_failed": KindCodes(MINOR, UA, LOGIN),
    "security.mfa_backup_code_used": KindCodes(OK, UA, LOGIN),
    "security.passkey_added": KindCodes(OK, SA, ATTRIBUTES),
    "security.passkey_removed": KindCodes(OK, SA, ATTRIBUTES),
    "security.passkey_used": KindCodes(OK, UA, LOGIN),
    "security.passkey_failed": KindCodes(MINOR, UA, LOGIN),
    "security.mfa_reset": KindCodes(OK, SA, ATTRIBUTES),
    "security.reauth_failed": KindCodes(MINOR, UA, action="E"),
    "security.password_change_refused": KindCodes(MINOR, SA, ATTRIBUTES),
    "security.mfa_change_refused": KindCodes(MINOR, SA, ATTRIBUTES),
    "security.email_change_refused": KindCodes(MINOR, SA, ATTRIBUTES),
    "security.phone_change_refused": KindCodes(MINOR, SA, ATTRIBUTES),
    "security.sessions_end_refused": KindCodes(MINOR, UA, LOGOUT),
    "security.password_prompt_refused_locked": KindCodes(SERIOUS, UA, action="E"),
    "security.password_reset_requested": KindCodes(OK, UA, action="E"),
    "security.password_reset_refused_unknown": KindCodes(MINOR, UA, action="E"),
    "security.password_reset_refused_limit": KindCodes(SERIOUS, UA, action="E"),
    "security.password_reset": KindCodes(OK, SA, ATTRIBUTES),
    "security.password_link_refused": KindCodes(MINOR, UA, action="E"),
    "security.password_link_refused_unknown": KindCodes(MINOR, UA, action="E"),
    "security.session_capped": KindCodes(OK, UA, LOGOUT),
    "security.session_revoked": KindCodes(OK, UA, LOGOUT),
    "security.field_keys_rotated": KindCodes(OK, SA, SECURITY_CONFIGURATION),
    "audit.exported": KindCodes(OK, AUDIT_LOG_USED),
    "audit.exported_fhir": KindCodes(OK, AUDIT_LOG_USED),
    "audit.export_failed": KindCodes(SERIOUS, AUDIT_LOG_USED),
    "audit.export_interrupted": KindCodes(MINOR, AUDIT_LOG_USED),
    "audit.export_source_changed": KindCodes(OK, AUDIT_LOG_USED),
    "audit.evidence_exported": KindCodes(OK, AUDIT_LOG_USED),
    "audit.partition_created": KindCodes(OK, AUDIT_LOG_USED),
    "audit.archive_written": KindCodes(OK, AUDIT_LOG_USED),
    "audit.archived": KindCodes(OK, AUDIT_LOG_USED, action="D"),
    "audit.stream_skipped": KindCodes(OK, AUDIT_LOG_USED, action="E"),
    "audit.stream_retired": KindCodes(OK, AUDIT_LOG_USED, action="D"),
    "audit.account_history_viewed": KindCodes(OK, AUDIT_LOG_USED),
    "audit.patient_history_viewed": KindCodes(OK, AUDIT_LOG_USED),
    "audit.verification_requested": KindCodes(OK, AUDIT_LOG_USED),
    "audit.verified": KindCodes(OK, AUDIT_LOG_USED, action="E"),
    "audit.verification_failed": KindCodes(SERIOUS, SA, action="E"),
    "support_pin.viewed": KindCodes(OK, None, action="R"),
    "support_pin.generated": KindCodes(OK, SA, ATTRIBUTES),
    "support_pin.validated": KindCodes(OK, UA, action="E"),
    "support_pin.validation_failed": KindCodes(MINOR, UA, action="E"),
    "support_pin.validation_locked": KindCodes(MAJOR, SA, ATTRIBUTES),
    "support_pin.validation_refused": KindCodes(SERIOUS, UA, action="E"),
    "support_pin.validation_blocked": KindCodes(MAJOR, SA, ATTRIBUTES),
    "support_pin.validation_refused_blocked": KindCodes(SERIOUS, UA, action="E"),
    "support_pin.validation_unblocked": KindCodes(OK, SA, ATTRIBUTES),
    "support_pin.validation_unblocked_by_owner": KindCodes(OK, SA, ATTRIBUTES),
    "support_pin.agent_locked": KindCodes(MAJOR, SA, ATTRIBUTES),
    "support_pin.validation_refused_agent": KindCodes(SERIOUS, UA, action="E"),
    "app_pin.viewed": KindCodes(OK, None, action="R"),
    "app_pin.changed": KindCodes(OK, SA, ATTRIBUTES),
    "pins.view_refused": KindCodes(MINOR, UA, action="R"),
    "practice.created": KindCodes(OK, SA, SOFTWARE_CONFIGURATION),
    "practice.updated": KindCodes(OK, SA, SOFTWARE_CONFIGURATION),
    "specialty.added": KindCodes(OK, SA, SOFTWARE_CONFIGURATION),
    "specialty.renamed": KindCodes(OK, SA, SOFTWARE_CONFIGURATION),
    "break_glass.opened": KindCodes(OK, SA, EMERGENCY_OVERRIDE_STARTED),
    "break_glass.identity_viewed": KindCodes(OK, SA, USE_OF_RESTRICTED_FUNCTION),
    "break_glass.pin_rotated": KindCodes(OK, SA, ATTRIBUTES),
    "break_glass.expired": KindCodes(OK, SA, EMERGENCY_OVERRIDE_STOPPED),
    "break_glass.ended": KindCodes(OK, SA, EMERGENCY_OVERRIDE_STOPPED),
    "break_glass.closed": KindCodes(OK, SA, EMERGENCY_OVERRIDE_STOPPED),
    "break_glass.reviewed": KindCodes(OK, None),
    "alert.raised": KindCodes(OK, SA),
    "alert.acknowledged": KindCodes(OK, SA),
    "patient.chart_viewed": KindCodes(OK, PATIENT_RECORD),
}

# EventActionCode per Action; "Not specified" takes the kind's `action` above. DICOM's
# Export message reads (R) the data it sends out; sign-in and sign-out execute (E).
ACTION_CODES: dict[str, str | None] = {
    Action.CREATE: "C",
    Action.VIEW: "R",
    Action.UPDATE: "U",
    Action.EXPORT: "R",
    Action.LOGIN: "E",
    Action.LOGOUT: "E",
    Action.NOT_SPECIFIED: None,
}


class UnknownKindError(ValueError):
    """The event's kind is not in KIND_CODES: its outcome is not known, and ATNA requires one.

    Only an event written by another release of the application (a newer one,
    during an upgrade) can have such a kind; send it once this release knows it.
    """


def event_outcome(kind: str) -> Outcome | None:
    """The outcome of a kind, or None for a kind this release does not know."""
    codes = KIND_CODES.get(kind)
    return codes.outcome if codes else None


def atna_message(event: dict, *, audit_source_id: str | None = None) -> bytes:
    """Return the DICOM/IHE `AuditMessage` XML of one event, UTF-8 with its declaration.

    `audit_source_id` names the system that reports it (the host name by default).
    Raises UnknownKindError for a kind not in KIND_CODES.
    """
    codes = KIND_CODES.get(event["kind"])
    if codes is None:
        raise UnknownKindError(f"no ATNA outcome for audit event kind {event['kind']!r}")
    source_id = audit_source_id or socket.gethostname()
    root = ET.Element("AuditMessage")
    _event_identification(root, event, codes)
    _active_participant(root, event, source_id)
    source = _element(root, "AuditSourceIdentification", AuditSourceID=source_id)
    if event["practice_id"] is not None:
        source.set("AuditEnterpriseSiteID", str(event["practice_id"]))
    _element(source, "AuditSourceTypeCode", **{"csd-code": "4"})  # application server
    if event["account_ref"] is not None or event["account_label"]:
        account_id = event["account_ref"]
        _participant_object(
            root,
            object_id="" if account_id is None else str(account_id),
            type_code="1",  # person
            role="11",  # security user entity: the events concern the account's security
            id_type=Code("11", "RFC-3881", "User Identifier"),
            name=event["account_label"],
        )
    if event["patient_id"]:
        _participant_object(
            root,
            object_id=event["patient_id"],
            type_code="1",  # person
            role="1",  # patient
            id_type=Code("2", "RFC-3881", "Patient Number"),
            name=event["patient_name"],
        )
    _participant_object(
        root,
        object_id=f"{event['chain_id']}.{event['seq']}",
        type_code="2",  # system object
        role="13",  # security resource: DICOM's role for the audit log
        id_type=Code("audit-event", PROJECT_CODE_SYSTEM, "Audit chain and position"),
        name="Audit event",
        details=record_details(event),
    )
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True)


def _event_identification(root: ET.Element, event: dict, codes: KindCodes) -> None:
    action = ACTION_CODES.get(event["action"]) or codes.action
    attributes = {
        "EventDateTime": hashing.timestamp(event["occurred_at"]),
        "EventOutcomeIndicator": str(int(codes.outcome)),
    }
    if action:
        attributes["EventActionCode"] = action
    identification = _element(root, "EventIdentification", **attributes)
    own = Code(event["kind"], PROJECT_CODE_SYSTEM, event["kind"])
    _coded(identification, "EventID", codes.event_id or own)
    if codes.event_type is not None:
        _coded(identification, "EventTypeCode", codes.event_type)
    _coded(identification, "EventTypeCode", own)
    _element(identification, "EventOutcomeDescription").text = xml_text(event["details"])


def _active_participant(root: ET.Element, event: dict, source_id: str) -> None:
    if event["actor_ref"] is not None:
        participant = _element(
            root, "ActiveParticipant", UserID=str(event["actor_ref"]), UserIsRequestor="true"
        )
        if event["actor_label"]:
            participant.set("UserName", xml_text(event["actor_label"]))
    elif event["ip"]:
        participant = _element(
            root, "ActiveParticipant", UserID=ANONYMOUS_USER_ID, UserIsRequestor="true"
        )
    else:
        participant = _element(root, "ActiveParticipant", UserID=source_id, UserIsRequestor="true")
        _coded(participant, "RoleIDCode", APPLICATION)
    if event["ip"]:
        participant.set("NetworkAccessPointID", xml_text(str(event["ip"])))
        participant.set("NetworkAccessPointTypeCode", "2")  # IP address


def record_details(event: dict) -> list[tuple[str, str]]:
    details = [
        ("chain", str(event["chain_id"])),
        ("seq", str(event["seq"])),
        ("prev_hash", event["prev_hash"]),
        ("row_hash", event["row_hash"]),
        ("kind", event["kind"]),
    ]
    if event["practice_id"] is not None:
        details.append(("practice", str(event["practice_id"])))
    if event["request_id"]:
        details.append(("request_id", event["request_id"]))
    if event["user_agent"]:
        details.append(("user_agent", event["user_agent"]))
    details.append(("details", event["details"]))
    if event["data"]:
        data = json.dumps(event["data"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        details.append(("data", data))
    return details


def _participant_object(
    root: ET.Element,
    *,
    object_id: str,
    type_code: str,
    role: str,
    id_type: Code,
    name: str,
    details: Sequence[tuple[str, str]] = (),
) -> None:
    participant = _element(
        root,
        "ParticipantObjectIdentification",
        ParticipantObjectID=object_id,
        ParticipantObjectTypeCode=type_code,
        ParticipantObjectTypeCodeRole=role,
    )
    _coded(participant, "ParticipantObjectIDTypeCode", id_type)
    _element(participant, "ParticipantObjectName").text = xml_text(name)
    for detail_type, value in details:
        encoded = base64.b64encode(value.encode("utf-8", "surrogatepass")).decode("ascii")
        _element(participant, "ParticipantObjectDetail", type=detail_type, value=encoded)


def _coded(parent: ET.Element, tag: str, code: Code) -> ET.Element:
    return _element(
        parent,
        tag,
        **{"csd-code": code.code, "codeSystemName": code.system, "originalText": code.text},
    )


def _element(parent: ET.Element, tag: str, **attributes: str) -> ET.Element:
    return ET.SubElement(parent, tag, {name: xml_text(value) for name, value in attributes.items()})


def xml_text(value: str) -> str:
    """Replace what XML 1.0 cannot carry (most control characters, lone surrogates) by U+FFFD."""
    return _NOT_XML.sub("\ufffd", value)


# The complement of XML 1.0's Char production.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
