from django.urls import include, path
from django.views.i18n import JavaScriptCatalog

import ehr.converters  # noqa: F401  (registers the id converters)
from accounts.views import (
    idle,
    passkeys,
    password_reset,
    practice_staff,
    profile,
    security,
    sign_in,
)

# django-otp-webauthn's JSON endpoints (its script and template tags name them in this
# namespace), served by the project's subclasses of its views.
passkey_api = [
    path(
        "registration/begin/",
        passkeys.PasskeyRegistrationBegin.as_view(),
        name="credential-registration-begin",
    ),
    path(
        "registration/complete/",
        passkeys.PasskeyRegistrationComplete.as_view(),
        name="credential-registration-complete",
    ),
    path(
        "authentication/begin/",
        passkeys.PasskeyAuthenticationBegin.as_view(),
        name="credential-authentication-begin",
    ),
    path(
        "authentication/complete/",
        passkeys.PasskeyAuthenticationComplete.as_view(),
        name="credential-authentication-complete",
    ),
    path(
        "jsi18n/",
        JavaScriptCatalog.as_view(packages=["django_otp_webauthn"]),
        name="js-i18n-catalog",
    ),
]

urlpatterns = [
    # Sign-in and confirmation
    path("accounts/login/", sign_in.SignInView.as_view(), name="login"),
    path("accounts/login/mfa/", sign_in.login_mfa, name="login_mfa"),
    path("accounts/logout/", sign_in.SignOutView.as_view(), name="logout"),
    path("account/confirm/", sign_in.reauth_view, name="reauth"),
    # Forgot password (Django's views), and the staff invitation's link (the same view)
    path(
        "accounts/password-reset/",
        password_reset.PasswordResetView.as_view(),
        name="password_reset",
    ),
    path(
        "accounts/password-reset/sent/",
        password_reset.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "accounts/password-reset/complete/",
        password_reset.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path(
        "accounts/password-reset/<uidb64>/<token>/",
        password_reset.SetPasswordLinkView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/set-password/<uidb64>/<token>/",
        password_reset.InvitationView.as_view(),
        name="invitation_set_password",
    ),
    # The user's own pages
    path("account/settings/", profile.account_settings, name="account_settings"),
    path("account/staff/", profile.staff_account, name="staff_account"),
    path("account/password/", profile.password_change, name="password_change"),
    path(
        "account/images/<id:user_id>/<str:kind>/<str:version>/",
        profile.profile_image,
        name="profile_image",
    ),
    # Security tab
    path("account/security/", security.security, name="security"),
    path("account/security/mfa/start/", security.mfa_enrol_start, name="mfa_enrol_start"),
    path("account/security/mfa/confirm/", security.mfa_enrol_confirm, name="mfa_enrol_confirm"),
    path("account/security/mfa/backup-codes/", security.mfa_backup_codes, name="mfa_backup_codes"),
    path("account/security/mfa/remove/", security.mfa_remove, name="mfa_remove"),
    path("account/security/passkeys/add/", passkeys.passkey_add, name="passkey_add"),
    path(
        "account/security/passkeys/<id:passkey_id>/remove/",
        passkeys.passkey_remove,
        name="passkey_remove",
    ),
    path("account/passkeys/", include((passkey_api, "otp_webauthn"))),
    path(
        "account/security/sessions/<stored_session_key:session_id>/end/",
        security.session_end,
        name="session_end",
    ),
    path(
        "account/security/sessions/end-others/",
        security.sessions_end_others,
        name="sessions_end_others",
    ),
    path("session/status/", idle.session_status, name="session_status"),
    path("session/keepalive/", idle.session_keepalive, name="session_keepalive"),
    # Practice staff (practice admins)
    path("practice/staff/", practice_staff.practice_staff, name="practice_staff"),
    path("practice/staff/new/", practice_staff.practice_staff_create, name="practice_staff_create"),
    path(
        "practice/staff/<id:user_id>/sign-out/",
        practice_staff.practice_staff_sign_out,
        name="practice_staff_sign_out",
    ),
    path(
        "practice/staff/<id:user_id>/unlock/",
        practice_staff.practice_staff_unlock,
        name="practice_staff_unlock",
    ),
    path(
        "practice/staff/<id:user_id>/unblock-pin/",
        practice_staff.practice_staff_unblock_pin,
        name="practice_staff_unblock_pin",
    ),
    path(
        "practice/staff/<id:user_id>/deactivate/",
        practice_staff.practice_staff_deactivate,
        name="practice_staff_deactivate",
    ),
    path(
        "practice/staff/<id:user_id>/reactivate/",
        practice_staff.practice_staff_reactivate,
        name="practice_staff_reactivate",
    ),
    path(
        "practice/staff/<id:user_id>/role/",
        practice_staff.practice_staff_role,
        name="practice_staff_role",
    ),
]
