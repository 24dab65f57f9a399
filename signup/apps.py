from django.apps import AppConfig


class SignupConfig(AppConfig):
    name = "signup"

    def ready(self) -> None:
        from django.contrib.auth.password_validation import get_default_password_validators

        # Register the signup app's outbox kinds (messaging.kinds) and checks.
        from signup import checks, messages  # noqa: F401
        from signup.flows.signup import user_create
        from signup.models import UserManager

        # The manager creates users through the one service (signup.models).
        UserManager.creator = staticmethod(user_create)  # type: ignore[assignment]

        # Load the 20,000 common passwords now, not in some user's first
        # signup (it made a fresh gunicorn worker's first requests 300+ ms).
        get_default_password_validators()
