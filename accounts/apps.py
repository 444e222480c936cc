from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from accounts import reauth, sessions

        user_logged_in.connect(sessions.stamp_at_sign_in, dispatch_uid="accounts_idle_stamp")
        user_logged_in.connect(reauth.stamp_at_sign_in, dispatch_uid="accounts_reauth_stamp")
