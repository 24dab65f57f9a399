"""One-time codes: generate, hash, match.

Six decimal digits from a CSPRNG; at rest only an HMAC-SHA256 keyed with a
key derived from SECRET_KEY (so a database dump alone cannot brute-force the
10^6 space); compared in constant time.
"""

import hmac
import secrets

from django.utils.crypto import salted_hmac

CODE_DIGITS = 6
# Compared against when an address has no live code, so a check does one HMAC of
# the same length for every address (equal work; a match has odds of 2**-256).
NO_CODE_HASH = "0" * 64
_SALT = "payshift.signup.codes"


def code_generate() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def code_hash(code: str, *, user_id: int, purpose: str) -> str:
    """Keyed hash bound to the user and purpose, so hashes are not reusable."""
    return salted_hmac(_SALT, f"{purpose}:{user_id}:{code}", algorithm="sha256").hexdigest()


def code_matches(code: str, stored_hash: str, *, user_id: int, purpose: str) -> bool:
    if not (len(code) == CODE_DIGITS and code.isascii() and code.isdigit()):
        return False
    return hmac.compare_digest(code_hash(code, user_id=user_id, purpose=purpose), stored_hash)
