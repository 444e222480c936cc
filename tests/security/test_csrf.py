"""Every endpoint that changes state refuses a request without a valid CSRF token."""

import pytest
from django.test import Client
from django.urls import reverse

from accounts.roles import Role
from tests.security.test_access_matrix import MATRIX, concrete_url

# url name -> who posts (None: anonymous). Every name in MATRIX that accepts POST.
POSTERS = {
    "login": None,
    "login_mfa": None,
    "logout": Role.PROVIDER,
    "mfa_enrol_start": Role.PROVIDER,
    "mfa_enrol_confirm": Role.PROVIDER,
    "mfa_backup_codes": Role.PROVIDER,
    "mfa_remove": Role.PROVIDER,
    "session_end": Role.PROVIDER,
    "passkey_add": Role.PROVIDER,
    "passkey_remove": Role.PROVIDER,
    "otp_webauthn:credential-registration-begin": Role.PROVIDER,
    "otp_webauthn:credential-registration-complete": Role.PROVIDER,
    "otp_webauthn:credential-authentication-begin": Role.PROVIDER,
    "otp_webauthn:credential-authentication-complete": Role.PROVIDER,
    "sessions_end_others": Role.PROVIDER,
    "reauth": Role.PROVIDER,
    "password_change": Role.PROVIDER,
    "account_settings": Role.PROVIDER,
    "staff_account": Role.NURSE,
    "session_keepalive": Role.PROVIDER,
    "practice_staff_unlock": Role.PRACTICE_ADMIN,
    "practice_staff_sign_out": Role.PRACTICE_ADMIN,
    "practice_staff_deactivate": Role.PRACTICE_ADMIN,
    "practice_staff_unblock_pin": Role.PRACTICE_ADMIN,
    "practice_staff_reactivate": Role.PRACTICE_ADMIN,
    "practice_staff_role": Role.PRACTICE_ADMIN,
    "practice_staff_create": Role.PRACTICE_ADMIN,
    "password_reset": None,
    "password_reset_confirm": None,
    "invitation_set_password": None,
    "support_pin_view": Role.PROVIDER,
    "support_pin_generate": Role.PROVIDER,
    "app_pin_view_edit": Role.PROVIDER,
    "support_console_validate": Role.SUPPORT_AGENT,
    "break_glass_open": Role.SUPPORT_AGENT,
    "break_glass_rotate_pin": Role.SUPPORT_AGENT,
    "break_glass_end": Role.SUPPORT_AGENT,
    "break_glass_review": Role.COMPLIANCE_OFFICER,
    "audit_integrity": Role.COMPLIANCE_OFFICER,
    "alert_acknowledge": Role.COMPLIANCE_OFFICER,
}
READ_ONLY = {
    "home",
    "pin_shown",
    "security",
    "support_console",
    "healthz",
    "otp_webauthn:js-i18n-catalog",
    "password_reset_done",
    "password_reset_complete",
    "profile_image",
    "session_status",
    "practice_staff",
    "audit_report",
    "audit_dashboard",
    "audit_export",
    "audit_patients",
    "audit_practices",
    "audit_export_fhir",
    "audit_evidence",
    # GET only; reading a history records that it was read, as an export does
    "audit_subject_account",
    "audit_subject_account_export",
    "audit_subject_account_export_fhir",
    "audit_subject_patient",
    "audit_subject_patient_export",
    "audit_subject_patient_export_fhir",
    "outbox_status",
    "break_glass_list",
    "break_glass_grant",
    "alert_list",
    "alert_detail",
}


def test_every_url_is_classified():
    assert set(POSTERS) | READ_ONLY == set(MATRIX)
    assert not set(POSTERS) & READ_ONLY


@pytest.mark.parametrize("name", sorted(POSTERS))
def test_post_without_a_token_is_refused(name, people):
    client = Client(enforce_csrf_checks=True)
    role = POSTERS[name]
    if role is not None:
        client.force_login(people[role.value])
    response = client.post(concrete_url(name, people), {"password": "x", "pin": "1234"})
    assert response.status_code == 403, name
    # Refused for the token (Django's CSRF failure page), not by some later check.
    assert "This form has expired" in response.content.decode(), name


@pytest.mark.parametrize("name", sorted(READ_ONLY))
def test_read_only_urls_do_not_accept_posts(name, people):
    client = Client()
    client.force_login(people[Role.PLATFORM_AUDITOR.value])
    response = client.post(concrete_url(name, people))
    assert response.status_code in (302, 403, 404, 405), name
    assert response.status_code != 200


def test_the_admin_refuses_posts_without_a_token(people):
    root = people[Role.PLATFORM_AUDITOR.value]
    type(root).objects.filter(pk=root.pk).update(is_staff=True, is_superuser=True)
    client = Client(enforce_csrf_checks=True)
    client.force_login(type(root).objects.get(pk=root.pk))
    response = client.post(reverse("admin:accounts_user_changelist"), {"action": "unlock_sign_in"})
    assert response.status_code == 403
