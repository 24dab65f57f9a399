"""One-time codes: generate, hash, match, issue, kill.

Six decimal digits from a CSPRNG; at rest only an HMAC-SHA256 keyed with a
key derived from SECRET_KEY (so a database dump alone cannot brute-force the
10^6 space); compared in constant time. Issuing a code kills the older ones
of its purpose. The flows that request and check codes are in
signup.flows.codes; the worker issues a code as it sends it (signup.messages).
"""

import hmac
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from signup.models import User, VerificationCode

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


@transaction.atomic(savepoint=False)  # inside the worker's per-row savepoint: no second one
def verification_code_issue(*, user: User, purpose: str) -> str:
    """A new code for user; every older live code of that purpose dies.

    Called by the worker as it sends the email, so the plaintext exists only
    in that process and in the email (docs/architecture.md, "Why the worker
    makes the code").
    """
    now = timezone.now()
    VerificationCode.objects.filter(user=user, purpose=purpose, used_at__isnull=True).update(
        used_at=now
    )
    code = code_generate()
    VerificationCode.objects.create(
        user=user,
        purpose=purpose,
        code_hash=code_hash(code, user_id=user.pk, purpose=purpose),
        created_at=now,
        expires_at=now + timedelta(seconds=settings.SIGNUP_CODE_TTL_SECONDS),
    )
    return code


def codes_kill_for_address(*, email: str, purpose: str, now: datetime) -> None:
    """Mark every live code of purpose for email's account used (any address)."""
    owners = User.objects.filter(**User.objects.email_lookup(email)).values("pk")
    VerificationCode.objects.filter(user__in=owners, purpose=purpose, used_at__isnull=True).update(
        used_at=now
    )
