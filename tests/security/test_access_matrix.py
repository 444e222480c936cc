"""Every URL the resolver knows, for every role and for anonymous, against one table.

A URL added without a row here fails `test_every_url_has_a_row`: access rules are
decided on purpose, never by default.
"""

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from accounts.roles import Role

ANON = "anonymous"
ROLES = [ANON, *[role.value for role in Role]]

OK, DENIED, NOT_FOUND, NOT_ALLOWED, UNAUTHORIZED = 200, 403, 404, 405, 401
LOGIN = "to sign-in"  # 302 to /accounts/login/
REDIRECT = "redirect"  # 302 elsewhere (the user's own page)
CONFIRM = "to confirm"  # 302 to /account/confirm/: allowed, after the password (and code) again


def everyone(expected, anonymous=LOGIN):
    return {ANON: anonymous, **{role.value: expected for role in Role}}


def only(allowed, expected_for_others=DENIED, allowed_status=OK):
    table = everyone(expected_for_others)
    for role in allowed:
        table[role.value] = allowed_status
    return table


# url name -> {role: expected answer to GET}
MATRIX = {
    "home": everyone(REDIRECT),
    "healthz": everyone(OK, anonymous=OK),
    "login": everyone(REDIRECT, anonymous=OK),
    "login_mfa": everyone(LOGIN, anonymous=LOGIN),
    "logout": everyone(NOT_ALLOWED, anonymous=NOT_ALLOWED),
    "security": everyone(OK),
    "reauth": everyone(OK),
    "password_change": everyone(OK),
    "account_settings": only([Role.PROVIDER]),
    "staff_account": {**everyone(OK), Role.PROVIDER.value: DENIED},
    "profile_image": everyone(NOT_FOUND),  # the provider has no picture; others never see one
    "session_status": everyone(OK, anonymous=UNAUTHORIZED),
    "session_keepalive": everyone(NOT_ALLOWED, anonymous=NOT_ALLOWED),
    "practice_staff": only([Role.PRACTICE_ADMIN]),
    "practice_staff_unlock": everyone(NOT_ALLOWED),
    "practice_staff_sign_out": everyone(NOT_ALLOWED),
    # a confirmation page first (the admin confirms who they are before it)
    "practice_staff_deactivate": only([Role.PRACTICE_ADMIN], allowed_status=CONFIRM),
    "practice_staff_unblock_pin": everyone(NOT_ALLOWED),
    "practice_staff_reactivate": everyone(NOT_ALLOWED),
    "practice_staff_role": everyone(NOT_ALLOWED),
    "mfa_enrol_start": everyone(NOT_ALLOWED),
    "mfa_enrol_confirm": everyone(NOT_ALLOWED),
    "mfa_backup_codes": everyone(NOT_ALLOWED),
    "mfa_remove": everyone(NOT_ALLOWED),
    "passkey_add": everyone(NOT_ALLOWED),
    "passkey_remove": everyone(NOT_ALLOWED),
    # django-otp-webauthn's JSON endpoints (POST from its script). Adding a passkey is
    # refused before the Security tab's confirmation; a passkey check needs a user: the
    # signed-in one, or the one past the password step (accounts/views/passkeys.py).
    "otp_webauthn:credential-registration-begin": everyone(DENIED, anonymous=DENIED),
    "otp_webauthn:credential-registration-complete": everyone(DENIED, anonymous=DENIED),
    "otp_webauthn:credential-authentication-begin": everyone(NOT_ALLOWED, anonymous=DENIED),
    "otp_webauthn:credential-authentication-complete": everyone(NOT_ALLOWED, anonymous=DENIED),
    "otp_webauthn:js-i18n-catalog": everyone(OK, anonymous=OK),  # its script's words
    "session_end": everyone(NOT_ALLOWED),
    "sessions_end_others": everyone(NOT_ALLOWED),
    "practice_staff_create": everyone(NOT_ALLOWED),
    # Forgot password: open to anyone, signed in or not (Django's views).
    "password_reset": everyone(OK, anonymous=OK),
    "password_reset_done": everyone(OK, anonymous=OK),
    "password_reset_complete": everyone(OK, anonymous=OK),
    # a link with a made-up token: the page says it is not valid, to anyone
    "password_reset_confirm": everyone(OK, anonymous=OK),
    "invitation_set_password": everyone(OK, anonymous=OK),
    "audit_report": {**everyone(OK), Role.SUPPORT_AGENT.value: DENIED},
    "audit_export": {**everyone(CONFIRM), Role.SUPPORT_AGENT.value: DENIED},
    "audit_patients": {**everyone(OK), Role.SUPPORT_AGENT.value: DENIED},
    "audit_practices": only([Role.PLATFORM_AUDITOR]),
    "audit_export_fhir": {**everyone(CONFIRM), Role.SUPPORT_AGENT.value: DENIED},
    # Who touched this account or patient: officers (their practice's) and auditors.
    "audit_subject_account": only([Role.PLATFORM_AUDITOR, Role.COMPLIANCE_OFFICER]),
    "audit_subject_account_export": only(
        [Role.PLATFORM_AUDITOR, Role.COMPLIANCE_OFFICER], allowed_status=CONFIRM
    ),
    "audit_subject_account_export_fhir": only(
        [Role.PLATFORM_AUDITOR, Role.COMPLIANCE_OFFICER], allowed_status=CONFIRM
    ),
    # a patient the log has never seen: no such patient for those who may look
    "audit_subject_patient": only(
        [Role.PLATFORM_AUDITOR, Role.COMPLIANCE_OFFICER], allowed_status=NOT_FOUND
    ),
    "audit_subject_patient_export": only(
        [Role.PLATFORM_AUDITOR, Role.COMPLIANCE_OFFICER], allowed_status=CONFIRM
    ),
    "audit_subject_patient_export_fhir": only(
        [Role.PLATFORM_AUDITOR, Role.COMPLIANCE_OFFICER], allowed_status=CONFIRM
    ),
    "outbox_status": only([Role.PLATFORM_AUDITOR]),
    "audit_integrity": only([Role.PLATFORM_AUDITOR, Role.COMPLIANCE_OFFICER]),
    "audit_dashboard": only([Role.PLATFORM_AUDITOR, Role.COMPLIANCE_OFFICER]),
    "audit_evidence": only(
        [Role.PLATFORM_AUDITOR, Role.COMPLIANCE_OFFICER], allowed_status=CONFIRM
    ),
    "support_pin_view": everyone(OK),
    "support_pin_generate": everyone(NOT_ALLOWED),
    "app_pin_view_edit": everyone(OK),
    "pin_shown": everyone(REDIRECT),  # nothing was just confirmed: back to the account page
    "support_console": only([Role.SUPPORT_AGENT]),
    "support_console_validate": everyone(NOT_ALLOWED),
    "break_glass_open": only([Role.SUPPORT_AGENT], allowed_status=CONFIRM),
    # no such grant: the agent is sent back to the console; everyone else is refused
    "break_glass_grant": only([Role.SUPPORT_AGENT], allowed_status=REDIRECT),
    "break_glass_rotate_pin": everyone(NOT_ALLOWED),
    "break_glass_end": everyone(NOT_ALLOWED),  # POST only
    "break_glass_list": only([Role.COMPLIANCE_OFFICER, Role.PLATFORM_AUDITOR]),
    # the review form: no such grant for those who review; everyone else is refused
    "break_glass_review": {
        **everyone(DENIED),
        Role.COMPLIANCE_OFFICER.value: NOT_FOUND,
        Role.PLATFORM_AUDITOR.value: NOT_FOUND,
    },
    "alert_list": only([Role.COMPLIANCE_OFFICER, Role.PLATFORM_AUDITOR]),
    # no such alert for those who see alerts; everyone else is refused
    "alert_detail": {
        **everyone(DENIED),
        Role.COMPLIANCE_OFFICER.value: NOT_FOUND,
        Role.PLATFORM_AUDITOR.value: NOT_FOUND,
    },
    "alert_acknowledge": everyone(NOT_ALLOWED),  # POST only
}
ADMIN_PREFIX = "admin/"  # the Django admin: superusers only, tested below

BAD_REQUEST = 400
SIGNED_OUT = "signed out"  # 302 to /accounts/login/, as a refusal is, after signing out
AGENT = Role.SUPPORT_AGENT
OVERSEERS = [Role.COMPLIANCE_OFFICER, Role.PLATFORM_AUDITOR]
# url name -> {role: expected answer to a POST with no fields}: what an attacker who
# skips the page and posts straight at the address gets. Read-only pages refuse the
# method; actions refuse the roles they are not for before reading the form; the
# ones they are for get the form's own answer (a confirmation first, or what is missing).
POST_MATRIX = {
    **{name: everyone(NOT_ALLOWED) for name, row in MATRIX.items() if row[ANON] == LOGIN},
    "healthz": everyone(NOT_ALLOWED, anonymous=NOT_ALLOWED),
    "session_status": everyone(NOT_ALLOWED, anonymous=NOT_ALLOWED),
    "password_reset_done": everyone(NOT_ALLOWED, anonymous=NOT_ALLOWED),
    "password_reset_complete": everyone(NOT_ALLOWED, anonymous=NOT_ALLOWED),
    "otp_webauthn:js-i18n-catalog": everyone(NOT_ALLOWED, anonymous=NOT_ALLOWED),
    # Forms anyone may post: the sign-in, Forgot password, and links with a made-up token.
    "login": everyone(REDIRECT, anonymous=OK),
    "login_mfa": everyone(LOGIN),  # no password step behind it
    "password_reset": everyone(OK, anonymous=OK),
    "password_reset_confirm": everyone(OK, anonymous=OK),
    "invitation_set_password": everyone(OK, anonymous=OK),
    "logout": everyone(SIGNED_OUT),
    # Everyone's own account: the form's answer, behind the password where it asks one.
    "security": everyone(NOT_ALLOWED),
    "reauth": everyone(OK),
    "password_change": everyone(OK),
    "account_settings": only([Role.PROVIDER]),
    "staff_account": {**everyone(OK), Role.PROVIDER.value: DENIED},
    "support_pin_view": everyone(OK),
    "support_pin_generate": everyone(CONFIRM),
    "app_pin_view_edit": everyone(OK),
    "session_keepalive": everyone(OK, anonymous=UNAUTHORIZED),
    "session_end": everyone(BAD_REQUEST),
    "sessions_end_others": everyone(BAD_REQUEST),
    "mfa_enrol_start": everyone(BAD_REQUEST),
    "mfa_enrol_confirm": everyone(CONFIRM),
    "mfa_backup_codes": everyone(BAD_REQUEST),
    # no authenticator to remove: the roles that must keep one are told there is none
    "mfa_remove": {
        **everyone(BAD_REQUEST),
        **{role.value: NOT_FOUND for role in [Role.PRACTICE_ADMIN, AGENT, *OVERSEERS]},
    },
    "passkey_add": everyone(BAD_REQUEST),
    "passkey_remove": everyone(CONFIRM),
    "otp_webauthn:credential-registration-begin": everyone(DENIED, anonymous=DENIED),
    "otp_webauthn:credential-registration-complete": everyone(DENIED, anonymous=DENIED),
    "otp_webauthn:credential-authentication-begin": everyone(OK, anonymous=DENIED),
    "otp_webauthn:credential-authentication-complete": everyone(BAD_REQUEST, anonymous=DENIED),
    # Practice Staff's actions: practice admins, after their password.
    **{
        name: only([Role.PRACTICE_ADMIN], allowed_status=CONFIRM)
        for name in MATRIX
        if name.startswith("practice_staff_")
    },
    # the new member's form is checked before the password is asked for: an empty one, 400
    "practice_staff_create": only([Role.PRACTICE_ADMIN], allowed_status=BAD_REQUEST),
    "support_console_validate": only([AGENT], allowed_status=BAD_REQUEST),
    "break_glass_open": only([AGENT], allowed_status=CONFIRM),
    # no such grant: the agent is sent back to the console
    "break_glass_rotate_pin": only([AGENT], allowed_status=REDIRECT),
    "break_glass_end": only([AGENT], allowed_status=REDIRECT),
    "break_glass_review": {**everyone(DENIED), **{r.value: NOT_FOUND for r in OVERSEERS}},
    "alert_acknowledge": {**everyone(DENIED), **{r.value: NOT_FOUND for r in OVERSEERS}},
    "audit_integrity": only(OVERSEERS, allowed_status=REDIRECT),  # "verify now"
}
# A POST refused for who sends it, or for its method, changes nothing at all.
REFUSALS = {LOGIN, DENIED, NOT_ALLOWED, UNAUTHORIZED}


def named_patterns(patterns=None, prefix="", namespace=""):
    for pattern in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from named_patterns(pattern.url_patterns, prefix + str(pattern.pattern), inner)
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), namespace + (pattern.name or "")


def test_every_url_has_a_row():
    missing = [
        f"{route} ({name})"
        for route, name in named_patterns()
        if not route.startswith(ADMIN_PREFIX) and name not in MATRIX
    ]
    assert missing == [], "decide who may open these: " + ", ".join(missing)


def concrete_url(name: str, people) -> str:
    from django.urls import reverse

    provider = people[Role.PROVIDER.value]
    kwargs = {
        "profile_image": {"user_id": provider.pk, "kind": "picture", "version": "0" * 16},
        "practice_staff_unlock": {"user_id": people[Role.NURSE.value].pk},
        "practice_staff_sign_out": {"user_id": people[Role.NURSE.value].pk},
        "practice_staff_deactivate": {"user_id": people[Role.NURSE.value].pk},
        "practice_staff_unblock_pin": {"user_id": people[Role.NURSE.value].pk},
        "practice_staff_reactivate": {"user_id": people[Role.NURSE.value].pk},
        "practice_staff_role": {"user_id": people[Role.NURSE.value].pk},
        "session_end": {"session_id": "0" * 40},
        "passkey_remove": {"passkey_id": 999999},
        "password_reset_confirm": {"uidb64": "MQ", "token": "bogus-token"},
        "invitation_set_password": {"uidb64": "MQ", "token": "bogus-token"},
        "break_glass_open": {"account_id": provider.pk},
        "break_glass_grant": {"grant_id": 999999},
        "break_glass_rotate_pin": {"grant_id": 999999},
        "break_glass_end": {"grant_id": 999999},
        "break_glass_review": {"grant_id": 999999},
        "alert_detail": {"alert_id": 999999},
        "alert_acknowledge": {"alert_id": 999999},
        "audit_subject_account": {"account_id": provider.pk},
        "audit_subject_account_export": {"account_id": provider.pk},
        "audit_subject_account_export_fhir": {"account_id": provider.pk},
        "audit_subject_patient": {"practice_id": provider.practice_id, "patient_id": "P-1"},
        "audit_subject_patient_export": {"practice_id": provider.practice_id, "patient_id": "P-1"},
        "audit_subject_patient_export_fhir": {
            "practice_id": provider.practice_id,
            "patient_id": "P-1",
        },
    }.get(name, {})
    return reverse(name, kwargs=kwargs)


def answer(response) -> object:
    if response.status_code == 302:
        location = response["Location"]
        if location.startswith("/accounts/login/"):
            return LOGIN
        return CONFIRM if location.startswith("/account/confirm/") else REDIRECT
    return response.status_code


class Visitor:
    """One role's browser: signed in once, and again only when a request signed it out
    (each URL asked in its own fresh session would sign in some 1,300 times)."""

    def __init__(self, role: str, people):
        self.role, self.people, self.client = role, people, None

    def fresh(self, name: str) -> Client:
        if (
            self.client is None
            or name in CEREMONY
            or (self.role != ANON and not self.client.session.get("_auth_user_id"))
        ):
            self.client = Client()
            if self.role != ANON:
                self.client.force_login(self.people[self.role])
        return self.client


# A passkey ceremony begun keeps its challenge in the session, which changes how the
# next of these answers: each is asked in a session of its own.
CEREMONY = {name for name in MATRIX if name.startswith("otp_webauthn:credential-")}


def in_turn() -> list[str]:
    """Every URL name, signing out last."""
    return sorted(MATRIX, key=lambda name: (name == "logout", name))


@pytest.mark.parametrize("role", ROLES)
def test_each_url_answers_each_role_as_the_table_says(role, people):
    visitor, wrong = Visitor(role, people), {}
    for name in in_turn():
        url = concrete_url(name, people)
        got = answer(visitor.fresh(name).get(url))
        if got != MATRIX[name][role]:
            wrong[url] = f"expected {MATRIX[name][role]}, got {got}"
    assert wrong == {}, f"{role}: {wrong}"


def test_the_admin_is_for_superusers_behind_two_factor_only(people):
    for role in ROLES:
        client = Client()
        if role != ANON:
            client.force_login(people[role])
        response = client.get("/admin/", follow=True)
        assert response.redirect_chain, role
        final = response.redirect_chain[-1][0]
        assert final.startswith("/accounts/login/") or final == "/account/security/", role
    # A superuser without an authenticator is sent to set one up, not into the admin.
    nurse = people[Role.NURSE.value]
    type(nurse).objects.filter(pk=nurse.pk).update(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(type(nurse).objects.get(pk=nurse.pk))
    assert client.get("/admin/", follow=True).redirect_chain[-1][0] == "/account/security/"
    # With one, and a session that passed it, the admin opens.
    root = people[Role.PLATFORM_AUDITOR.value]
    type(root).objects.filter(pk=root.pk).update(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(type(root).objects.get(pk=root.pk))
    assert client.get("/admin/").status_code == 200


def test_every_url_has_a_row_for_posts():
    assert sorted(POST_MATRIX) == sorted(MATRIX)


# What any request may write: its session (the idle clock's last activity).
SESSION_TABLES = ("accounts_usersession", "django_session")


def post_writes(client: Client, url: str) -> tuple[object, list[str]]:
    """POST `url` with no fields; return the answer and every write the request made
    (INSERT, UPDATE, DELETE) but to its session."""
    from django.db import connection

    writes = []

    def watch(execute, sql, params, many, context):
        verb = sql.lstrip().split(None, 1)[0].upper()
        if verb in {"INSERT", "UPDATE", "DELETE"} and not any(t in sql for t in SESSION_TABLES):
            writes.append(sql[:120])
        return execute(sql, params, many, context)

    with connection.execute_wrapper(watch):
        got = answer(client.post(url, {}))
    return got, writes


@pytest.mark.parametrize("role", ROLES)
def test_each_url_answers_a_post_from_each_role_as_the_table_says(role, people):
    visitor, wrong = Visitor(role, people), {}
    for name in in_turn():
        url = concrete_url(name, people)
        client = visitor.fresh(name)
        got, writes = post_writes(client, url)
        if got == LOGIN and role != ANON and not client.session.get("_auth_user_id"):
            got = SIGNED_OUT
        if got != POST_MATRIX[name][role]:
            wrong[url] = f"expected {POST_MATRIX[name][role]}, got {got}"
        elif got in REFUSALS and writes:
            wrong[url] = f"refused ({got}) but wrote: {writes}"
    assert wrong == {}, f"POST as {role}: {wrong}"
