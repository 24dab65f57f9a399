from django.apps import AppConfig


class SignupConfig(AppConfig):
    name = "signup"

    def ready(self) -> None:
        from django.contrib.auth.password_validation import get_default_password_validators

        # Register the signup app's outbox kinds (messaging.kinds).
        from signup import emails, notifications  # noqa: F401

        # Load the 20,000 common passwords now, not in some user's first
        # signup (it made a fresh gunicorn worker's first requests 300+ ms).
        get_default_password_validators()
