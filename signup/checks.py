"""Start-up checks of two-factor login's keys (`manage.py check --deploy`,
and every command that runs checks).

MFA_ENCRYPTION_KEY must hold Fernet keys (an Error otherwise: no secret
could be read or written); in production it should be set (a Warning): the
key derived from SECRET_KEY ties the TOTP secrets to it, so rotating
SECRET_KEY would switch every user's authenticator off.
"""

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register


@register("signup")
def check_mfa_keys(app_configs=None, **kwargs) -> list[CheckMessage]:
    from cryptography.fernet import Fernet

    problems: list[CheckMessage] = []
    for index, key in enumerate(settings.MFA_ENCRYPTION_KEYS):
        try:
            Fernet(key)
        except ValueError:
            problems.append(
                Error(
                    f"MFA_ENCRYPTION_KEY's key #{index + 1} is not a Fernet key.",
                    hint='Make one with: python -c "from cryptography.fernet import Fernet; '
                    'print(Fernet.generate_key().decode())"',
                    id="signup.E001",
                )
            )
    return problems


@register("signup", Tags.security, deploy=True)
def check_mfa_key_set(app_configs=None, **kwargs) -> list[CheckMessage]:
    if settings.MFA_ENCRYPTION_KEYS:
        return []
    return [
        Warning(
            "MFA_ENCRYPTION_KEY is not set: the TOTP secrets are encrypted with a key "
            "derived from SECRET_KEY, and rotating SECRET_KEY would make them unreadable.",
            hint="Set MFA_ENCRYPTION_KEY to a Fernet key of its own (docs/configuration.md).",
            id="signup.W001",
        )
    ]
