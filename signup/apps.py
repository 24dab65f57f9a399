from django.apps import AppConfig


class SignupConfig(AppConfig):
    name = "signup"

    def ready(self) -> None:
        from signup import emails  # noqa: F401  (registers the signup email builders)
