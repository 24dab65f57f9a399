"""The second factor's mechanisms: TOTP codes (RFC 6238), the secret at rest,
recovery codes and the login's mfa_token.

- TOTP: pyotp's SHA-1, 6 digits, 30 s steps; a code is taken for the
  current step and MFA_TOTP_DRIFT_STEPS either side, every candidate
  compared in constant time, and the step it matched returned (the caller
  refuses a step already used: signup.models.TotpDevice.last_step).
- The secret at rest: a Fernet token (AES-128-CBC with HMAC-SHA256) under
  MultiFernet of MFA_ENCRYPTION_KEYS (the first encrypts, every one
  decrypts: a key can be rotated), or one key derived from SECRET_KEY when
  none is set. The plaintext exists in the enrolment's answer and in memory
  while a code is checked; never in a row, a log, an outbox row or a message.
- Recovery codes: 12 characters from an alphabet without look-alikes (about
  59 bits), shown grouped as xxxx-xxxx-xxxx; at rest an HMAC-SHA256 keyed
  from SECRET_KEY and bound to the user, like the emailed codes.
- mfa_token: 32 random bytes, its SHA-256 at rest (signup.tokens).
"""

import base64
import functools
import hmac
import secrets
import time

import pyotp
import segno
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.utils.crypto import salted_hmac

TOTP_DIGITS = 6
TOTP_PERIOD = 30
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i
RECOVERY_LENGTH = 12
_RECOVERY_SALT = "payshift.signup.recovery-codes"
_KEY_SALT = "payshift.signup.mfa-encryption-key"


class SecretUnreadableError(Exception):
    """No configured key decrypts a stored secret (a key was dropped too early)."""


# --- the secret at rest -------------------------------------------------------------


@functools.cache
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    # The key derived from SECRET_KEY (32 bytes of an HMAC keyed with it)
    # encrypts when no key is set, and always decrypts, last: secrets written
    # before MFA_ENCRYPTION_KEY was set stay readable until mfa_rotate_key
    # moves them to it.
    derived = salted_hmac(_KEY_SALT, "fernet", secret=secret_key, algorithm="sha256").digest()
    derived_key = base64.urlsafe_b64encode(derived).decode()
    return MultiFernet([Fernet(key) for key in (*keys, derived_key)])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.MFA_ENCRYPTION_KEYS), settings.SECRET_KEY)


def secret_encrypt(secret: str) -> str:
    return fernet().encrypt(secret.encode()).decode()


def secret_decrypt(stored: str) -> str:
    try:
        return fernet().decrypt(stored.encode()).decode()
    except InvalidToken:
        raise SecretUnreadableError("no MFA_ENCRYPTION_KEY decrypts this secret") from None


def secret_reencrypt(stored: str) -> str:
    """The same secret under the first key (manage.py mfa_rotate_key)."""
    return fernet().rotate(stored.encode()).decode()


# --- TOTP -------------------------------------------------------------------------


def totp_secret_new() -> str:
    """160 random bits as base32 (RFC 4226's recommended length)."""
    return pyotp.random_base32(length=32)


def totp_uri(secret: str, *, account: str) -> str:
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_PERIOD).provisioning_uri(
        name=account, issuer_name=settings.MFA_ISSUER
    )


def totp_qr_svg(uri: str) -> str:
    """The URI as a QR code, an SVG data URI an <img> can show."""
    return segno.make(uri, error="m").svg_data_uri(scale=4)


def totp_step(at: float | None = None) -> int:
    return int((time.time() if at is None else at) // TOTP_PERIOD)


def totp_match(secret: str, code: str, *, at: float | None = None, digits: int = TOTP_DIGITS):
    """The time step code belongs to (now, or drift steps either side), or None.

    Every candidate is computed and compared (constant time for a code of
    the right form); the latest matching step wins.
    """
    code = totp_code_normalize(code)
    if not _digits(code, digits):
        return None
    totp = pyotp.TOTP(secret, digits=digits, interval=TOTP_PERIOD)
    now = totp_step(at)
    drift = settings.MFA_TOTP_DRIFT_STEPS
    matched = None
    for step in range(now - drift, now + drift + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            matched = step
    return matched


# --- recovery codes -----------------------------------------------------------------


def recovery_code_new() -> str:
    raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, RECOVERY_LENGTH, 4))


def recovery_code_normalize(code: str) -> str:
    """As typed: any case, with or without the dashes and spaces."""
    return "".join(ch for ch in code.lower() if ch != "-" and not ch.isspace())


def recovery_code_hash(code: str, *, user_id: int) -> str:
    """Keyed and bound to the user: a dump alone cannot test guesses."""
    value = f"{user_id}:{recovery_code_normalize(code)}"
    return salted_hmac(_RECOVERY_SALT, value, algorithm="sha256").hexdigest()


def totp_code_normalize(code: str) -> str:
    """As typed or pasted: "492 039" is "492039"."""
    return "".join(code.split())


def looks_like_totp(code: str) -> bool:
    """A TOTP code (6 digits), not a recovery code: how mfa_code is read."""
    return _digits(totp_code_normalize(code), TOTP_DIGITS)


def _digits(code: str, digits: int) -> bool:
    """Exactly digits ASCII digits: the form of a TOTP code."""
    return len(code) == digits and code.isascii() and code.isdigit()
