"""Audit events as HL7 FHIR R4 AuditEvent resources, and a filtered export as a Bundle.

`fhir_audit_event(event)` takes the same dict as `audit.atna.atna_message` (the
keys of `audit.atna.EVENT_KEYS`) and returns the AuditEvent as a dict, validated
by the `fhir.resources` model. The models are those of FHIR R4B (4.3), whose
AuditEvent is the same resource as R4's (4.0.1): same elements, cardinalities and
bindings, so what is written here is an R4 AuditEvent too.

It says what the ATNA message says, in FHIR's elements (IHE BALP reads both the
same way), from the same table of codes (`audit.atna.KIND_CODES`):

- `type`: the DICOM EventID (or the kind's own code where none fits);
  `subtype`: the DICOM EventTypeCode, if any, then the kind's own code, always.
- `action`: C, R, U or E; `recorded`: when it happened (UTC); `outcome`: 0, 4,
  8 or 12, as DICOM's; `outcomeDesc`: the Details the report shows.
- `purposeOfEvent`: "break the glass" (HL7 ActReason BTG) for what is done
  under break-glass access: opening it, viewing the identity, replacing the PIN.
- `agent`: the requestor: the user (identifier = the user's id, display = the
  report's label), `anonymous` for a request nobody had signed in for, or the
  application itself; with the client address as `network` (type 2, IP).
- `source`: the reporting host as observer, the practice as `site`, type 4
  (application server).
- `entity`: the account concerned (role 11, security user entity), the patient
  (role 1), and the audit record itself (role 13, security resource) whose
  `detail` carries the chain, the position, the previous and own hash, the kind
  and the event's data, so a receiver can tell a gap or an edit.

`fhir_bundle(rows, ...)` streams a `searchset` Bundle of them, one entry per row,
in 64 KiB blocks, with the number of rows in each block.
"""

import json
import re
import socket
from collections.abc import Iterable, Iterator
from datetime import datetime
from functools import cache

from audit import hashing
from audit.atna import (
    ACTION_CODES,
    ANONYMOUS_USER_ID,
    APPLICATION,
    KIND_CODES,
    Code,
    UnknownKindError,
    record_details,
    xml_text,
)

FHIR_VERSION = "4.0"  # the `fhirVersion` MIME parameter of R4
CONTENT_TYPE = f"application/fhir+json; fhirVersion={FHIR_VERSION}"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
# The kinds' own codes (audit/kinds.py), and the audit record's identifiers.
KIND_SYSTEM = "urn:ehr-audit:kind"
USER_SYSTEM = "urn:ehr-audit:user"
PATIENT_SYSTEM = "urn:ehr-audit:patient"
EVENT_SYSTEM = "urn:ehr-audit:event"  # value `chain.seq`, unique on the platform
CHECKPOINT_SYSTEM = "urn:ehr-audit:checkpoint"
BREAK_THE_GLASS = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
    "code": "BTG",
    "display": "break the glass",
}
UNDER_BREAK_GLASS = frozenset(
    {"break_glass.opened", "break_glass.identity_viewed", "break_glass.pin_rotated"}
)
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
NETWORK_IP = "2"  # AuditEventAgentNetworkType: IP address
SOURCE_TYPE = {
    "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
    "code": "4",
    "display": "Application Server",
}
BLOCK = 64 * 1024


@cache
def _models():
    """The AuditEvent and Bundle models, imported on first use (a fifth of a second)."""
    from fhir.resources.R4B.auditevent import AuditEvent
    from fhir.resources.R4B.bundle import Bundle

    return AuditEvent, Bundle


# FHIR's `string`: at least one character that is a space, tab, CR, LF or not white space.
_FHIR_STRING = re.compile(r"[ \r\n\t\S]")


def _text(value: str) -> str:
    """Text as a FHIR string carries it: no control characters but tab, CR and LF (FHIR
    2.24.0.1, as XML's), no lone surrogates; either becomes U+FFFD, as in ATNA."""
    value = xml_text(value)
    return value if not value or _FHIR_STRING.search(value) else "\ufffd" * len(value)


def _coding(code: Code) -> dict:
    system = DCM if code.system == "DCM" else KIND_SYSTEM
    return {"system": system, "code": code.code, "display": code.text}


def _kind(kind: str) -> dict:
    return {"system": KIND_SYSTEM, "code": kind, "display": kind}


def fhir_audit_event(event: dict, *, source_id: str | None = None) -> dict:
    """Return one event as a validated FHIR AuditEvent (a dict, JSON-ready).

    `source_id` names the reporting system (the host name by default). Raises
    UnknownKindError for a kind this release does not know (its outcome is not
    known, and FHIR's is required of an audit record here as in ATNA).
    """
    kind = event["kind"]
    codes = KIND_CODES.get(kind)
    if codes is None:
        raise UnknownKindError(f"no outcome for audit event kind {kind!r}")
    source_id = source_id or socket.gethostname()
    resource = {
        "resourceType": "AuditEvent",
        "id": f"{event['chain_id']}-{event['seq']}",
        "type": _coding(codes.event_id) if codes.event_id else _kind(kind),
        "subtype": [*([_coding(codes.event_type)] if codes.event_type else []), _kind(kind)],
        "recorded": hashing.timestamp(event["occurred_at"]),
        "outcome": str(int(codes.outcome)),
        "agent": [_agent(event, source_id)],
        "source": _source(event, source_id),
        "entity": _entities(event),
    }
    action = ACTION_CODES.get(event["action"]) or codes.action
    if action:
        resource["action"] = action
    if event["details"]:
        resource["outcomeDesc"] = _text(event["details"])
    if kind in UNDER_BREAK_GLASS:
        resource["purposeOfEvent"] = [{"coding": [BREAK_THE_GLASS], "text": "Break-glass access"}]
    # Validated on the way out: the model raises on anything R4 does not allow.
    audit_event = _models()[0]
    return audit_event.model_validate(resource).model_dump(mode="json", exclude_none=True)


def _agent(event: dict, source_id: str) -> dict:
    if event["actor_ref"] is not None:
        who = {"identifier": {"system": USER_SYSTEM, "value": str(event["actor_ref"])}}
        if event["actor_label"]:
            who["display"] = _text(event["actor_label"])
        agent = {"who": who, "requestor": True}
    elif event["ip"]:
        agent = {"who": {"display": ANONYMOUS_USER_ID}, "requestor": True}
        if event["actor_label"]:
            agent["altId"] = _text(event["actor_label"])  # the name that was typed
    else:
        agent = {
            "type": {"coding": [_coding(APPLICATION)]},
            "who": {"display": source_id},
            "requestor": True,
        }
    if event["ip"]:
        agent["network"] = {"address": str(event["ip"]), "type": NETWORK_IP}
    return agent


def _source(event: dict, source_id: str) -> dict:
    source = {"observer": {"display": source_id}, "type": [SOURCE_TYPE]}
    if event["practice_id"] is not None:
        source["site"] = str(event["practice_id"])
    return source


def _entity(*, what: dict, type_code: str, type_display: str, role: str, role_display: str):
    return {
        "what": what,
        "type": {"system": ENTITY_TYPE, "code": type_code, "display": type_display},
        "role": {"system": OBJECT_ROLE, "code": role, "display": role_display},
    }


def _entities(event: dict) -> list[dict]:
    entities = []
    if event["account_ref"] is not None or event["account_label"]:
        what = {}
        if event["account_ref"] is not None:
            what["identifier"] = {"system": USER_SYSTEM, "value": str(event["account_ref"])}
        if event["account_label"]:
            what["display"] = _text(event["account_label"])
        entities.append(
            _entity(
                what=what,
                type_code="1",
                type_display="Person",
                role="11",
                role_display="Security User Entity",
            )
        )
    if event["patient_id"]:
        what = {"identifier": {"system": PATIENT_SYSTEM, "value": _text(event["patient_id"])}}
        if event["patient_name"]:
            what["display"] = _text(event["patient_name"])
        entities.append(
            _entity(
                what=what, type_code="1", type_display="Person", role="1", role_display="Patient"
            )
        )
    record = _entity(
        what={
            "identifier": {"system": EVENT_SYSTEM, "value": f"{event['chain_id']}.{event['seq']}"}
        },
        type_code="2",
        type_display="System Object",
        role="13",
        role_display="Security Resource",
    )
    record["name"] = "Audit event"
    # An empty value (the first event's previous hash on a fresh chain) is left out:
    # FHIR has no empty strings.
    record["detail"] = [
        {"type": name, "valueString": _text(value)}
        for name, value in record_details(event)
        if value
    ]
    entities.append(record)
    return entities


def fhir_bundle(
    rows: Iterable[dict], *, total: int, checkpoint: int, timestamp: datetime
) -> Iterator[tuple[bytes, int]]:
    """Stream a `searchset` Bundle of the rows as AuditEvents: (block, rows in it).

    The envelope is validated as a Bundle of its own and each entry as an
    AuditEvent; the bytes are the envelope's JSON with the entries written into
    its `entry` array, so nothing holds more than a block. `checkpoint` (the
    signed checkpoint the rows are frozen at) is the Bundle's identifier.
    """
    envelope = (
        _models()[1]
        .model_validate(
            {
                "resourceType": "Bundle",
                "identifier": {"system": CHECKPOINT_SYSTEM, "value": str(checkpoint)},
                "type": "searchset",
                "timestamp": hashing.timestamp(timestamp),
                "total": total,
            }
        )
        .model_dump(mode="json", exclude_none=True)
    )
    head = json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))
    # FHIR's JSON has no empty arrays: a Bundle of no rows has no `entry` at all.
    parts, size, count, written = [head[:-1]], len(head), 0, 0
    source_id = socket.gethostname()
    for row in rows:
        entry = {
            "fullUrl": f"urn:ehr-audit:event:{row['chain_id']}.{row['seq']}",
            "resource": fhir_audit_event(row, source_id=source_id),
            "search": {"mode": "match"},
        }
        text = ("," if written else ',"entry":[') + json.dumps(
            entry, ensure_ascii=False, separators=(",", ":")
        )
        parts.append(text)
        size += len(text)
        count += 1
        written += 1
        if size >= BLOCK:
            yield "".join(parts).encode(), count
            parts, size, count = [], 0, 0
    parts.append("]}" if written else "}")
    yield "".join(parts).encode(), count
