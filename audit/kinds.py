"""Every kind of audit event, in one place.

A kind fixes an event's Type, Action and the wording of its Details (the seed's
wording where the seed has one). Callers name a kind and pass the values the
wording needs; they never write free-form details.
"""

from dataclasses import dataclass

from django.db import models


class EventType(models.TextChoices):
    ACCOUNT = "Account", "Account"
    SECURITY = "Security", "Security"
    PATIENT = "Patient", "Patient"
    REPORT = "Report", "Report"


class Action(models.TextChoices):
    NOT_SPECIFIED = "Not specified", "Not specified"
    CREATE = "Create", "Create"
    VIEW = "View", "View"
    UPDATE = "Update", "Update"
    EXPORT = "Export", "Export"
    LOGIN = "Login", "Login"
    LOGOUT = "Logout", "Logout"


@dataclass(frozen=True)
class EventKind:
    code: str
    type: EventType
    action: Action
    template: str

    def details(self, params: dict[str, str | int]) -> str:
        return self.template.format(**params)


ACCOUNT_CREATED = EventKind(
    "account.created",
    EventType.ACCOUNT,
    Action.CREATE,
    "Account created for user {account} with role {role}",
)
PROFILE_UPDATED = EventKind(
    "account.profile_updated",
    EventType.ACCOUNT,
    Action.UPDATE,
    "Profile updated for user {account}",
)
ACCOUNT_DEACTIVATED = EventKind(
    "account.deactivated", EventType.ACCOUNT, Action.UPDATE, "Account of user {account} deactivated"
)
ACCOUNT_REACTIVATED = EventKind(
    "account.reactivated", EventType.ACCOUNT, Action.UPDATE, "Account of user {account} reactivated"
)
ROLE_CHANGED = EventKind(
    "account.role_changed",
    EventType.SECURITY,
    Action.UPDATE,
    "Role of user {account} changed from {old} to {new}",
)
PLATFORM_ADMINISTRATOR_GRANTED = EventKind(
    "account.administrator_granted",
    EventType.SECURITY,
    Action.UPDATE,
    "Platform administration given to user {account}",
)
ACCOUNT_PRACTICE_CHANGED = EventKind(
    "account.practice_changed",
    EventType.SECURITY,
    Action.UPDATE,
    "User {account} moved from practice {old} to practice {new}",
)
PASSWORD_CHANGED = EventKind(
    "security.password_changed",
    EventType.SECURITY,
    Action.UPDATE,
    "Password changed for user {account}",
)
SIGNED_IN = EventKind(
    "security.signed_in", EventType.SECURITY, Action.LOGIN, "Signed in as user {account}"
)
SIGN_IN_FAILED = EventKind(
    "security.sign_in_failed",
    EventType.SECURITY,
    Action.LOGIN,
    "Failed sign-in for user {account}",
)
SIGN_IN_FAILED_UNKNOWN = EventKind(
    "security.sign_in_failed_unknown",
    EventType.SECURITY,
    Action.LOGIN,
    # The typed name is not recorded: people type passwords into the username field.
    "Failed sign-in with an unknown username",
)
SIGN_IN_LOCKED = EventKind(
    "security.sign_in_locked",
    EventType.SECURITY,
    Action.LOGIN,
    "Sign-in locked for user {account} after repeated failures",
)
SIGN_IN_LOCKED_UNKNOWN = EventKind(
    "security.sign_in_locked_unknown",
    EventType.SECURITY,
    Action.LOGIN,
    "Sign-in locked for an unknown username after repeated failures",
)
SIGN_IN_REFUSED_LOCKED = EventKind(
    "security.sign_in_refused_locked",
    EventType.SECURITY,
    Action.LOGIN,
    "Sign-in refused for user {account}: sign-in is locked",
)
SIGN_IN_REFUSED_LOCKED_UNKNOWN = EventKind(
    "security.sign_in_refused_locked_unknown",
    EventType.SECURITY,
    Action.LOGIN,
    "Sign-in refused for an unknown username: sign-in is locked",
)
SIGN_IN_UNLOCKED = EventKind(
    "security.sign_in_unlocked",
    EventType.SECURITY,
    Action.UPDATE,
    "Sign-in unlocked for user {account}",
)
SIGNED_OUT = EventKind(
    "security.signed_out", EventType.SECURITY, Action.LOGOUT, "Signed out user {account}"
)
SIGNED_OUT_AUTOMATICALLY = EventKind(
    "security.signed_out_automatically",
    EventType.SECURITY,
    Action.LOGOUT,
    "Automatically signed out user {account} after inactivity",
)
MFA_ENROLLED = EventKind(
    "security.mfa_enrolled",
    EventType.SECURITY,
    Action.CREATE,
    "Two-factor authentication turned on for user {account}",
)
MFA_REMOVED = EventKind(
    "security.mfa_removed",
    EventType.SECURITY,
    Action.UPDATE,
    "Two-factor authentication turned off for user {account}",
)
MFA_BACKUP_CODES_REPLACED = EventKind(
    "security.mfa_backup_codes_replaced",
    EventType.SECURITY,
    Action.UPDATE,
    "New backup codes made for user {account}",
)
MFA_FAILED = EventKind(
    "security.mfa_failed",
    EventType.SECURITY,
    Action.LOGIN,
    "Wrong two-factor code for user {account}",
)
MFA_BACKUP_CODE_USED = EventKind(
    "security.mfa_backup_code_used",
    EventType.SECURITY,
    Action.LOGIN,
    "Backup code used by user {account}",
)
PASSKEY_ADDED = EventKind(
    "security.passkey_added",
    EventType.SECURITY,
    Action.CREATE,
    "Passkey added for user {account}",
)
PASSKEY_REMOVED = EventKind(
    "security.passkey_removed",
    EventType.SECURITY,
    Action.UPDATE,
    "Passkey removed for user {account}",
)
PASSKEY_USED = EventKind(
    "security.passkey_used",
    EventType.SECURITY,
    Action.LOGIN,
    "Successful verification of passkey for user {account}",
)
PASSKEY_FAILED = EventKind(
    "security.passkey_failed",
    EventType.SECURITY,
    Action.LOGIN,
    "Unsuccessful verification of passkey for user {account}",
)
MFA_RESET = EventKind(
    "security.mfa_reset",
    EventType.SECURITY,
    Action.UPDATE,
    "Two-factor authentication reset for user {account}",
)
REAUTH_FAILED = EventKind(
    "security.reauth_failed",
    EventType.SECURITY,
    Action.NOT_SPECIFIED,
    "Confirmation before a sensitive action failed for user {account}: wrong password",
)
PASSWORD_CHANGE_REFUSED = EventKind(
    "security.password_change_refused",
    EventType.SECURITY,
    Action.UPDATE,
    "Password change refused for user {account}: wrong current password",
)
MFA_CHANGE_REFUSED = EventKind(
    "security.mfa_change_refused",
    EventType.SECURITY,
    Action.UPDATE,
    "Two-factor change refused for user {account}: wrong password",
)
EMAIL_CHANGE_REFUSED = EventKind(
    "security.email_change_refused",
    EventType.SECURITY,
    Action.UPDATE,
    "Email address change refused for user {account}: wrong password",
)
PHONE_CHANGE_REFUSED = EventKind(
    "security.phone_change_refused",
    EventType.SECURITY,
    Action.UPDATE,
    "Phone number change refused for user {account}: wrong password",
)
SESSIONS_END_REFUSED = EventKind(
    "security.sessions_end_refused",
    EventType.SECURITY,
    Action.LOGOUT,
    "Signing out other sessions refused for user {account}: wrong password",
)
# Self-service password reset (accounts/password_reset.py). A typed address is never in
# the Details: one no account uses is kept only as a keyed digest in the event's data.
PASSWORD_RESET_REQUESTED = EventKind(
    "security.password_reset_requested",
    EventType.SECURITY,
    Action.NOT_SPECIFIED,
    "Password reset link emailed to user {account}",
)
PASSWORD_RESET_REFUSED_UNKNOWN = EventKind(
    "security.password_reset_refused_unknown",
    EventType.SECURITY,
    Action.NOT_SPECIFIED,
    "Password reset refused: no active account with a password uses the email address given",
)
# `limit` is fixed words: "for one email address" or "from one client".
PASSWORD_RESET_REFUSED_LIMIT = EventKind(
    "security.password_reset_refused_limit",
    EventType.SECURITY,
    Action.NOT_SPECIFIED,
    "Password reset refused: too many requests {limit}",
)
PASSWORD_RESET = EventKind(
    "security.password_reset",
    EventType.SECURITY,
    Action.UPDATE,
    "Password reset from an emailed link for user {account}",
)
# `link` is fixed words: "Password reset" or "Account invitation".
PASSWORD_LINK_REFUSED = EventKind(
    "security.password_link_refused",
    EventType.SECURITY,
    Action.NOT_SPECIFIED,
    "{link} link refused for user {account}: not valid, already used or expired",
)
PASSWORD_LINK_REFUSED_UNKNOWN = EventKind(
    "security.password_link_refused_unknown",
    EventType.SECURITY,
    Action.NOT_SPECIFIED,
    "{link} link refused: it names no active account",
)
PASSWORD_PROMPT_REFUSED_LOCKED = EventKind(
    "security.password_prompt_refused_locked",
    EventType.SECURITY,
    Action.NOT_SPECIFIED,
    "Password prompt ({purpose}) refused for user {account}: sign-in is locked",
)
SESSION_CAPPED = EventKind(
    "security.session_capped",
    EventType.SECURITY,
    Action.LOGOUT,
    "Automatically signed out user {account}: the session reached its time limit",
)
SESSION_REVOKED = EventKind(
    "security.session_revoked",
    EventType.SECURITY,
    Action.LOGOUT,
    "Signed out {count} {sessions} of user {account} remotely",  # "1 session", "2 sessions"
)
# `filters` is fixed words too (AuditEventFilter.describe): what was typed into the
# filters goes into the event's data, never into its Details.
AUDIT_EXPORTED = EventKind(
    "audit.exported",
    EventType.REPORT,
    Action.EXPORT,
    "Audit log exported: {rows} events ({filters})",
)
AUDIT_EXPORTED_FHIR = EventKind(
    "audit.exported_fhir",
    EventType.REPORT,
    Action.EXPORT,
    "Audit log exported as FHIR AuditEvents: {rows} events ({filters})",
)
# Recorded after AUDIT_EXPORTED or AUDIT_EXPORTED_FHIR when its rows stopped part-way; `sent` counts the rows
# handed to the web server, which is as far as the application can see.
AUDIT_EXPORT_FAILED = EventKind(
    "audit.export_failed",
    EventType.REPORT,
    Action.EXPORT,
    "Audit log export failed after {sent} of {rows} events",
)
AUDIT_EXPORT_INTERRUPTED = EventKind(
    "audit.export_interrupted",
    EventType.REPORT,
    Action.EXPORT,
    "Audit log export interrupted after {sent} of {rows} events: the download was closed",
)
# The replica an export's event named failed before the first row: its rows came from
# the primary (the same rows, frozen at the export's checkpoint).
AUDIT_EXPORT_SOURCE_CHANGED = EventKind(
    "audit.export_source_changed",
    EventType.REPORT,
    Action.EXPORT,
    "Audit log export of {rows} events read from the primary: the replica failed before the first row",
)
# Reading the history of one account or one patient (the "who touched" page); `period`
# is the validated dates in fixed words.
AUDIT_ACCOUNT_HISTORY_VIEWED = EventKind(
    "audit.account_history_viewed",
    EventType.REPORT,
    Action.VIEW,
    "Audit history viewed for user {account}: {rows} events ({period})",
)
AUDIT_PATIENT_HISTORY_VIEWED = EventKind(
    "audit.patient_history_viewed",
    EventType.REPORT,
    Action.VIEW,
    "Audit history viewed for patient {patient}: {rows} events ({period})",
)
AUDIT_VERIFICATION_REQUESTED = EventKind(
    "audit.verification_requested",
    EventType.REPORT,
    Action.CREATE,
    "Audit log verification requested",
)
# Recorded by the application when a verification ends; `result` is fixed wording.
AUDIT_VERIFIED = EventKind(
    "audit.verified",
    EventType.REPORT,
    Action.NOT_SPECIFIED,
    "Audit log verified intact: {events} events in {chains} chains, {checkpoints} checkpoints",
)
AUDIT_VERIFICATION_FAILED = EventKind(
    "audit.verification_failed",
    EventType.SECURITY,
    Action.NOT_SPECIFIED,
    "Audit log verification found a problem at {where}",
)
AUDIT_EVIDENCE_EXPORTED = EventKind(
    "audit.evidence_exported",
    EventType.REPORT,
    Action.EXPORT,
    "Audit log evidence exported: {events} events in {chains} chains, "
    "through checkpoint {checkpoint}",
)

# Written by `audit_partitions` and `audit_archive` (docs/audit.md), in the platform's chain.
AUDIT_PARTITION_CREATED = EventKind(
    "audit.partition_created",
    EventType.REPORT,
    Action.CREATE,
    "Audit log partition for {month} created ({moved} events moved into it)",
)
AUDIT_ARCHIVE_WRITTEN = EventKind(
    "audit.archive_written",
    EventType.REPORT,
    Action.EXPORT,
    "Audit log archive of {month} written and verified: {events} events in {chains} chains, "
    "through checkpoint {checkpoint}",
)
# Written by `audit_archive --skip-undelivered`: the month left before the syslog
# destination received these events, which it therefore never will.
AUDIT_STREAM_SKIPPED = EventKind(
    "audit.stream_skipped",
    EventType.REPORT,
    Action.NOT_SPECIFIED,
    "Audit log copies to {destination} skipped: {events} events of {month} archived before "
    "they were sent",
)
# Written by `outbox_retire`: a syslog destination no longer sent anything, and no
# longer waited for by `audit_archive`.
AUDIT_STREAM_RETIRED = EventKind(
    "audit.stream_retired",
    EventType.REPORT,
    Action.NOT_SPECIFIED,
    "Audit log copies to {destination} retired: {events} events it had not received will "
    "never be sent",
)
AUDIT_ARCHIVED = EventKind(
    "audit.archived",
    EventType.REPORT,
    Action.NOT_SPECIFIED,
    "Audit log events of {month} archived and removed from the database: {events} events, "
    "{counters} dashboard counters",
)

# The Support PIN and App Unlock PIN (wording of the seed where it has one).
SUPPORT_PIN_VIEWED = EventKind(
    "support_pin.viewed",
    EventType.ACCOUNT,
    Action.NOT_SPECIFIED,
    "Support PIN viewed for user {account}",
)
SUPPORT_PIN_GENERATED = EventKind(
    "support_pin.generated",
    EventType.ACCOUNT,
    Action.UPDATE,
    "Generated New PIN for user {account}",
)
SUPPORT_PIN_VALIDATED = EventKind(
    "support_pin.validated",
    EventType.ACCOUNT,
    Action.NOT_SPECIFIED,
    "Successful validation of Support PIN for user {account}",
)
SUPPORT_PIN_VALIDATION_FAILED = EventKind(
    "support_pin.validation_failed",
    EventType.ACCOUNT,
    Action.NOT_SPECIFIED,
    "Unsuccessful validation of Support PIN for user {account}",
)
SUPPORT_PIN_VALIDATION_LOCKED = EventKind(
    "support_pin.validation_locked",
    EventType.SECURITY,
    Action.UPDATE,
    "Support PIN validation locked for user {account} after {failures} unsuccessful validations",
)
SUPPORT_PIN_VALIDATION_REFUSED = EventKind(
    "support_pin.validation_refused",
    EventType.SECURITY,
    Action.NOT_SPECIFIED,
    "Support PIN validation refused for user {account}: validation is locked",
)
SUPPORT_PIN_VALIDATION_BLOCKED = EventKind(
    "support_pin.validation_blocked",
    EventType.SECURITY,
    Action.UPDATE,
    "Support PIN validation blocked for user {account} after {locks} locks in a row: "
    "the owner must generate a new PIN",
)
SUPPORT_PIN_VALIDATION_REFUSED_BLOCKED = EventKind(
    "support_pin.validation_refused_blocked",
    EventType.SECURITY,
    Action.NOT_SPECIFIED,
    "Support PIN validation refused for user {account}: blocked until the owner generates "
    "a new PIN",
)
SUPPORT_PIN_VALIDATION_UNBLOCKED = EventKind(
    "support_pin.validation_unblocked",
    EventType.SECURITY,
    Action.UPDATE,
    "Support PIN validation unblocked for user {account}",
)
SUPPORT_PIN_VALIDATION_UNBLOCKED_BY_OWNER = EventKind(
    "support_pin.validation_unblocked_by_owner",
    EventType.SECURITY,
    Action.UPDATE,
    "Support PIN validation unblocked for user {account}: the owner generated a new PIN",
)
SUPPORT_PIN_AGENT_LOCKED = EventKind(
    "support_pin.agent_locked",
    EventType.SECURITY,
    Action.UPDATE,
    "Support PIN validation locked for agent {account} after {failures} failed validations "
    "across accounts",
)
SUPPORT_PIN_VALIDATION_REFUSED_AGENT = EventKind(
    "support_pin.validation_refused_agent",
    EventType.SECURITY,
    Action.NOT_SPECIFIED,
    "Support PIN validation refused for agent {account}: too many failed validations",
)
APP_PIN_VIEWED = EventKind(
    "app_pin.viewed",
    EventType.ACCOUNT,
    Action.NOT_SPECIFIED,
    "App Unlock PIN viewed for user {account}",
)
APP_PIN_CHANGED = EventKind(
    "app_pin.changed", EventType.ACCOUNT, Action.UPDATE, "App Unlock PIN changed for user {account}"
)
PIN_VIEW_REFUSED = EventKind(
    "pins.view_refused",
    EventType.SECURITY,
    Action.NOT_SPECIFIED,
    "PIN view refused for user {account}: wrong password",
)
FIELD_KEYS_ROTATED = EventKind(
    "security.field_keys_rotated",
    EventType.SECURITY,
    Action.UPDATE,
    "Encrypted fields re-encrypted: {count} values now under key {key_id}",
)

# The platform's own configuration, changed by its administrators (the Django admin):
# a practice's name, Group ID and country, and the list of specialties providers choose
# from. Old and new values are in the details: none of them is about a patient.
PRACTICE_CREATED = EventKind(
    "practice.created",
    EventType.ACCOUNT,
    Action.CREATE,
    "Practice {practice} created with Group ID {group_id}",
)
PRACTICE_UPDATED = EventKind(
    "practice.updated", EventType.ACCOUNT, Action.UPDATE, "Practice {practice} updated: {changes}"
)
SPECIALTY_ADDED = EventKind(
    "specialty.added", EventType.ACCOUNT, Action.CREATE, "Specialty {specialty} added"
)
SPECIALTY_RENAMED = EventKind(
    "specialty.renamed",
    EventType.ACCOUNT,
    Action.UPDATE,
    "Specialty {old} renamed to {new}",
)

# Break-glass access (details carry the grant's number; data carries its id).
BREAK_GLASS_OPENED = EventKind(
    "break_glass.opened",
    EventType.SECURITY,
    Action.CREATE,
    "Break-glass access #{grant} opened for user {account} for {minutes} minutes: {justification}",
)
BREAK_GLASS_IDENTITY_VIEWED = EventKind(
    "break_glass.identity_viewed",
    EventType.SECURITY,
    Action.VIEW,
    "Identity details of user {account} viewed under break-glass access #{grant}",
)
BREAK_GLASS_PIN_ROTATED = EventKind(
    "break_glass.pin_rotated",
    EventType.SECURITY,
    Action.UPDATE,
    "Support PIN of user {account} replaced under break-glass access #{grant}",
)
BREAK_GLASS_EXPIRED = EventKind(
    "break_glass.expired",
    EventType.SECURITY,
    Action.UPDATE,
    "Break-glass access #{grant} to user {account} expired",
)
BREAK_GLASS_ENDED = EventKind(
    "break_glass.ended",
    EventType.SECURITY,
    Action.UPDATE,
    "Break-glass access #{grant} to user {account} ended early by its agent",
)
BREAK_GLASS_CLOSED = EventKind(
    "break_glass.closed",
    EventType.SECURITY,
    Action.UPDATE,
    "Break-glass access #{grant} to user {account} ended: the account was deactivated",
)
BREAK_GLASS_REVIEWED = EventKind(
    "break_glass.reviewed",
    EventType.SECURITY,
    Action.UPDATE,
    "Break-glass access #{grant} to user {account} reviewed: {outcome}. Note: {note}",
)

# Alerts (alerts/): a rule noticed possible misuse or trouble; `summary` is the alert's own
# fixed wording (counts, names of staff, no PIN and no patient), `note` the acknowledger's.
ALERT_RAISED = EventKind(
    "alert.raised",
    EventType.SECURITY,
    Action.CREATE,
    "Alert #{alert} raised: {summary}",
)
ALERT_ACKNOWLEDGED = EventKind(
    "alert.acknowledged",
    EventType.SECURITY,
    Action.UPDATE,
    "Alert #{alert} acknowledged. Note: {note}",
)

# Written by the clinical modules of the EHR, which pass the patient; this slice
# has none of them, so only the benchmark's generated log and the tests use it.
PATIENT_CHART_VIEWED = EventKind(
    "patient.chart_viewed", EventType.PATIENT, Action.VIEW, "Chart viewed for patient {patient}"
)

KINDS: dict[str, EventKind] = {
    value.code: value for value in list(globals().values()) if isinstance(value, EventKind)
}

# The codes the report's "Break-glass only" filter selects: every kind of break-glass access.
BREAK_GLASS_CODES = tuple(code for code in KINDS if code.startswith("break_glass."))
# Oversight of an account, which its owner does not read in their own log: the alerts
# raised about it and their acknowledgement notes, a compliance officer or auditor
# reading its history, and the review of break-glass access to it. Told to the
# person being looked into, they would tip off an investigation; the officers and
# auditors who do the looking read them as any other event.
OVERSIGHT_CODES = (
    ALERT_RAISED.code,
    ALERT_ACKNOWLEDGED.code,
    AUDIT_ACCOUNT_HISTORY_VIEWED.code,
    BREAK_GLASS_REVIEWED.code,
)
