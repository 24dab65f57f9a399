"""One-time codes: generate, hash, match, issue, kill.

Six decimal digits from a CSPRNG; at rest only an HMAC-SHA256 keyed with a
key derived from SECRET_KEY (so a database dump alone cannot brute-force the
10^6 space); compared in constant time. Issuing a code kills the older ones
of its purpose. The flows that request and check codes are in
signup.flows.codes; the worker issues a code as it sends it (signup.messages).
"""

import functools
import hmac
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Field
from django.utils import timezone
from django.utils.crypto import salted_hmac

from core.db import column, ctes_write, field_of, quoted
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
    makes the code"). On PostgreSQL the kill and the insert are one
    statement (issue 23: each statement is a round trip and an ORM build).
    """
    now = timezone.now()
    code = code_generate()
    row = VerificationCode(
        user=user,
        purpose=purpose,
        code_hash=code_hash(code, user_id=user.pk, purpose=purpose),
        created_at=now,
        expires_at=now + timedelta(seconds=settings.SIGNUP_CODE_TTL_SECONDS),
    )
    if ctes_write():
        _kill_and_insert(row, now=now)
    else:  # SQLite: no UPDATE inside WITH, two statements
        live = VerificationCode.objects.filter(user=user, purpose=purpose, used_at__isnull=True)
        live.update(used_at=now)
        row.save(force_insert=True)
    return code


@functools.cache
def _kill_and_insert_sql(vendor: str) -> tuple[list[Field], str]:
    """The columns a code's INSERT writes, and PostgreSQL's one statement for
    _kill_and_insert (built from _meta once)."""
    meta, code = VerificationCode._meta, VerificationCode
    quote = connection.ops.quote_name
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    # Only quoted names from _meta and placeholders are interpolated.
    return fields, (
        f"WITH {quote('killed')} AS (UPDATE {quote(meta.db_table)}"  # noqa: S608
        f" SET {column(code, 'used_at')} = %s WHERE {column(code, 'user')} = %s"
        f" AND {column(code, 'purpose')} = %s AND {column(code, 'used_at')} IS NULL)"
        f" INSERT INTO {quote(meta.db_table)} ({', '.join(quoted(f) for f in fields)})"
        f" VALUES ({', '.join(['%s'] * len(fields))})"
    )


def _kill_and_insert(row: VerificationCode, *, now: datetime) -> None:
    """WITH killed AS (UPDATE ... SET used_at = now WHERE <row's user and
    purpose, live>) INSERT row: one statement. Both see the same snapshot,
    so the new code is not among the killed."""
    fields, sql = _kill_and_insert_sql(connection.vendor)
    values = [field.get_db_prep_save(field.pre_save(row, add=True), connection) for field in fields]
    used_at = field_of(VerificationCode, "used_at").get_db_prep_save(now, connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, [used_at, row.user_id, row.purpose, *values])


def codes_kill_for_address(*, email: str, purpose: str, now: datetime) -> None:
    """Mark every live code of purpose for email's account used (any address)."""
    owners = User.objects.filter(**User.objects.email_lookup(email)).values("pk")
    VerificationCode.objects.filter(user__in=owners, purpose=purpose, used_at__isnull=True).update(
        used_at=now
    )
