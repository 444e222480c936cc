from django.urls import path

from accounts import views

urlpatterns = [
    path("accounts/login/", views.SignInView.as_view(), name="login"),
    path("accounts/logout/", views.SignOutView.as_view(), name="logout"),
    path("account/settings/", views.account_settings, name="account_settings"),
    path("account/staff/", views.staff_account, name="staff_account"),
    path("account/password/", views.password_change, name="password_change"),
    path(
        "account/images/<int:user_id>/<str:kind>/",
        views.profile_image,
        name="profile_image",
    ),
    path("practice/staff/", views.practice_staff, name="practice_staff"),
    path(
        "practice/staff/<int:user_id>/unlock/",
        views.practice_staff_unlock,
        name="practice_staff_unlock",
    ),
]
