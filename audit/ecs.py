"""One audit event as a line of JSON in the Elastic Common Schema (ECS 8).

`ecs_line(event)` takes the same dict as `audit.atna.atna_message` (the keys of
`audit.atna.EVENT_KEYS`) and returns one JSON object on one line, UTF-8, no
newline at the end. The outcome comes from the same table as ATNA's
(`audit.atna.KIND_CODES`): 0 is `success`, 4, 8 and 12 are `failure`, a kind
this release does not know is `unknown`.

Field by field:

- `@timestamp`: when it happened, UTC; `event.kind` "event";
  `event.category`/`event.type` from `ECS_CATEGORIES`; `event.action` the kind
  code; `event.outcome`; `event.sequence` the position in its chain, and
  `event.id` `chain.seq`, unique on the platform; `event.dataset` "ehr.audit".
- `user.id`/`user.name`: who acted (the user's id, and the label the report
  shows, e.g. `496094 (dorothy Ludwig)`); `user.target.*`: the account
  concerned; `related.user`: both, by id and label; `source.ip` and
  `related.ip`: the client address; `user_agent.original`;
  `organization.id`: the practice; `http.request.id`: the X-Request-ID.
- `message`: the Details, as the report shows them.
- `ehr.audit.*`: what ECS has no field for: `chain_id`, `seq`, `prev_hash`,
  `row_hash` (a receiver can check that each event's `prev_hash` is the
  previous one's `row_hash` and that `seq` has no gaps), the report's `type`
  and `action` columns and the event's `data` (fixed keys per kind; map
  `ehr.audit.data` as `flattened` to keep the index mapping small);
  `ehr.patient.id`/`ehr.patient.name`: the patient, when there is one.

Empty values are left out rather than sent as "".
"""

import json

from audit import hashing
from audit.atna import Outcome, event_outcome

ECS_VERSION = "8.11.0"

AUTH_START = (("authentication",), ("start",))  # a sign-in, or a try at one
AUTH_INFO = (("authentication",), ("info",))  # a password prompt, a PIN checked for a caller
SESSION_END = (("authentication", "session"), ("end",))
USER_CHANGE = (("iam",), ("user", "change"))
USER_INFO = (("iam",), ("user", "info"))
READ = (("database",), ("access",))

# ECS event.category and event.type per kind, from ECS's allowed values for each
# category (a test checks that it covers audit/kinds.py exactly). A lock, block or
# unlock changes the account (iam), the failed try before it is authentication.
ECS_CATEGORIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "account.created": (("iam",), ("user", "creation")),
    "account.profile_updated": USER_CHANGE,
    "account.practice_changed": USER_CHANGE,
    "account.administrator_granted": (("iam",), ("admin", "change")),
    "account.deactivated": USER_CHANGE,
    "account.reactivated": USER_CHANGE,
    "account.role_changed": (("iam",), ("user", "group", "change")),
    "security.password_changed": USER_CHANGE,
    "security.signed_in": AUTH_START,
    "security.sign_in_failed": AUTH_START,
    "security.sign_in_failed_unknown": AUTH_START,
    "security.sign_in_locked": USER_CHANGE,
    "security.sign_in_locked_unknown": USER_CHANGE,
    "security.sign_in_refused_locked": AUTH_START,
    "security.sign_in_refused_locked_unknown": AUTH_START,
    "security.sign_in_unlocked": USER_CHANGE,
    "security.signed_out": SESSION_END,
    "security.signed_out_automatically": SESSION_END,
    "security.mfa_enrolled": USER_CHANGE,
    "security.mfa_removed": USER_CHANGE,
    "security.mfa_backup_codes_replaced": USER_CHANGE,
    "security.mfa_failed": AUTH_START,
    "security.mfa_backup_code_used": AUTH_START,
    "security.passkey_added": USER_CHANGE,
    "security.passkey_removed": USER_CHANGE,
    "security.passkey_used": AUTH_START,
    "security.passkey_failed": AUTH_START,
    "security.mfa_reset": USER_CHANGE,
    "security.reauth_failed": AUTH_INFO,
    "security.password_change_refused": USER_CHANGE,
    "security.mfa_change_refused": USER_CHANGE,
    "security.email_change_refused": USER_CHANGE,
    "security.phone_change_refused": USER_CHANGE,
    "security.sessions_end_refused": SESSION_END,
    "security.password_prompt_refused_locked": AUTH_INFO,
    "security.password_reset_requested": AUTH_INFO,
    "security.password_reset_refused_unknown": AUTH_INFO,
    "security.password_reset_refused_limit": AUTH_INFO,
    "security.password_reset": USER_CHANGE,
    "security.password_link_refused": AUTH_INFO,
    "security.password_link_refused_unknown": AUTH_INFO,
    "security.session_capped": SESSION_END,
    "security.session_revoked": SESSION_END,
    "security.field_keys_rotated": (("configuration",), ("change",)),
    "audit.exported": READ,
    "audit.exported_fhir": READ,
    "audit.export_failed": READ,
    "audit.export_interrupted": READ,
    "audit.export_source_changed": READ,
    "audit.evidence_exported": READ,
    "audit.partition_created": (("database",), ("creation",)),
    "audit.archive_written": READ,
    "audit.archived": (("database",), ("deletion",)),
    "audit.stream_skipped": (("database",), ("change",)),
    "audit.stream_retired": (("database",), ("deletion",)),
    "audit.account_history_viewed": READ,
    "audit.patient_history_viewed": READ,
    "audit.verification_requested": (("database",), ("info",)),
    "audit.verified": (("database",), ("info",)),
    "audit.verification_failed": (("database",), ("error",)),
    "support_pin.viewed": USER_INFO,
    "support_pin.generated": USER_CHANGE,
    "support_pin.validated": AUTH_INFO,
    "support_pin.validation_failed": AUTH_INFO,
    "support_pin.validation_locked": USER_CHANGE,
    "support_pin.validation_refused": AUTH_INFO,
    "support_pin.validation_blocked": USER_CHANGE,
    "support_pin.validation_refused_blocked": AUTH_INFO,
    "support_pin.validation_unblocked": USER_CHANGE,
    "support_pin.validation_unblocked_by_owner": USER_CHANGE,
    "support_pin.agent_locked": USER_CHANGE,
    "support_pin.validation_refused_agent": AUTH_INFO,
    "app_pin.viewed": USER_INFO,
    "app_pin.changed": USER_CHANGE,
    "pins.view_refused": AUTH_INFO,
    "practice.created": (("configuration",), ("creation",)),
    "practice.updated": (("configuration",), ("change",)),
    "specialty.added": (("configuration",), ("creation",)),
    "specialty.renamed": (("configuration",), ("change",)),
    "break_glass.opened": (("iam",), ("admin", "creation")),
    "break_glass.identity_viewed": READ,
    "break_glass.pin_rotated": USER_CHANGE,
    "break_glass.expired": (("iam",), ("admin", "deletion")),
    "break_glass.ended": (("iam",), ("admin", "deletion")),
    "break_glass.closed": (("iam",), ("admin", "deletion")),
    "break_glass.reviewed": (("iam",), ("admin", "info")),
    "alert.raised": (("intrusion_detection",), ("info",)),
    "alert.acknowledged": (("intrusion_detection",), ("info",)),
    "patient.chart_viewed": READ,
}


def ecs_outcome(kind: str) -> str:
    outcome = event_outcome(kind)
    if outcome is None:
        return "unknown"
    return "success" if outcome == Outcome.SUCCESS else "failure"


def ecs_document(event: dict) -> dict:
    """Return the ECS fields of one event as nested dicts, empty values left out."""
    kind = event["kind"]
    ecs_event = {
        "kind": "event",
        "action": kind,
        "outcome": ecs_outcome(kind),
        "sequence": event["seq"],
        "id": f"{event['chain_id']}.{event['seq']}",
        "dataset": "ehr.audit",
    }
    if kind in ECS_CATEGORIES:
        category, event_type = ECS_CATEGORIES[kind]
        ecs_event["category"] = list(category)
        ecs_event["type"] = list(event_type)
    actor = _user(event["actor_ref"], event["actor_label"])
    account = _user(event["account_ref"], event["account_label"])
    user = dict(actor)
    if account:
        user["target"] = account
    related_users = [value for value in (*actor.values(), *account.values()) if value]
    related = {"user": list(dict.fromkeys(related_users))}
    ip = str(event["ip"]) if event["ip"] else ""
    if ip:
        related["ip"] = [ip]
    document = {
        "@timestamp": hashing.timestamp(event["occurred_at"]),
        "ecs": {"version": ECS_VERSION},
        "event": ecs_event,
        "message": event["details"],
        "user": user,
        "related": related,
        "source": {"ip": ip},
        "user_agent": {"original": event["user_agent"]},
        "organization": {"id": "" if event["practice_id"] is None else str(event["practice_id"])},
        "http": {"request": {"id": event["request_id"]}},
        "ehr": {
            "audit": {
                "chain_id": event["chain_id"],
                "seq": event["seq"],
                "prev_hash": event["prev_hash"],
                "row_hash": event["row_hash"],
                "type": event["type"],
                "action": event["action"],
            },
            "patient": {"id": event["patient_id"], "name": event["patient_name"]},
        },
    }
    document = _pruned(document)
    if event["data"]:  # as written: an empty value inside it is a fact too
        document["ehr"]["audit"]["data"] = event["data"]
    return document


def ecs_line(event: dict) -> bytes:
    """Return the event as one line of ECS JSON, UTF-8, without a trailing newline.

    JSON escapes line breaks inside strings, so the line is one line whatever the
    Details hold. A lone surrogate (which UTF-8 cannot carry) goes out as its JSON
    escape `\\udcxx`.
    """
    text = json.dumps(ecs_document(event), ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8", "backslashreplace")


def _user(ref: int | None, label: str) -> dict:
    user = {}
    if ref is not None:
        user["id"] = str(ref)
    if label:
        user["name"] = label
    return user


def _pruned(value):
    """Drop empty strings, None, and dicts and lists left empty; keep 0 and False."""
    if isinstance(value, dict):
        kept = {key: _pruned(item) for key, item in value.items()}
        return {key: item for key, item in kept.items() if item not in ("", None, {}, [])}
    if isinstance(value, list):
        return [_pruned(item) for item in value]
    return value
