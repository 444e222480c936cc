from django.urls import path

from accounts import sessions, views

urlpatterns = [
    path("accounts/login/", views.SignInView.as_view(), name="login"),
    path("accounts/login/mfa/", views.login_mfa, name="login_mfa"),
    path("accounts/logout/", views.SignOutView.as_view(), name="logout"),
    path("account/security/", views.security, name="security"),
    path("account/confirm/", views.reauth_view, name="reauth"),
    path("account/settings/", views.account_settings, name="account_settings"),
    path("account/staff/", views.staff_account, name="staff_account"),
    path("account/password/", views.password_change, name="password_change"),
    path(
        "account/images/<int:user_id>/<str:kind>/",
        views.profile_image,
        name="profile_image",
    ),
    path("session/status/", sessions.session_status, name="session_status"),
    path("session/keepalive/", sessions.session_keepalive, name="session_keepalive"),
    path("practice/staff/", views.practice_staff, name="practice_staff"),
    path("practice/staff/new/", views.practice_staff_create, name="practice_staff_create"),
    path(
        "accounts/set-password/<uidb64>/<token>/",
        views.SetPasswordView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "practice/staff/<int:user_id>/sign-out/",
        views.practice_staff_sign_out,
        name="practice_staff_sign_out",
    ),
    path(
        "practice/staff/<int:user_id>/manage/",
        views.practice_staff_manage,
        name="practice_staff_manage",
    ),
    path(
        "practice/staff/<int:user_id>/unlock/",
        views.practice_staff_unlock,
        name="practice_staff_unlock",
    ),
]
