from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in, user_logged_out

        from accounts import reauth, session_registry, sessions

        user_logged_in.connect(sessions.stamp_at_sign_in, dispatch_uid="accounts_idle_stamp")
        user_logged_in.connect(reauth.stamp_at_sign_in, dispatch_uid="accounts_reauth_stamp")
        user_logged_in.connect(session_registry.session_started, dispatch_uid="accounts_session")
        user_logged_out.connect(
            session_registry.session_signed_out, dispatch_uid="accounts_session_end"
        )
