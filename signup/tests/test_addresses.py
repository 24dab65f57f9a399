"""One canonical address (issue 8, point 1; docs/api.md, "Addresses").

The database decides which spellings are one account (the unique index on
LOWER(email)); every per-address limit and lookup must agree with it. A key
computed by Python's str.lower() gave "İris@example.com" (one account with
"iris@example.com" in PostgreSQL) budgets of its own: 2^k for k letters i.
"""

import pytest
from django.db import connection

from signup import limits
from signup.addresses import address_key
from signup.models import AddressCounter, AddressLimit, User
from signup.selectors import user_by_email
from signup.tests.conftest import PASSWORD, RESEND, SIGNUP, VERIFY, make_user, verify_body

pytestmark = pytest.mark.django_db


def differing_code_points() -> list[tuple[str, str, str]]:
    """(c, SQL lower(c), SQL upper(c)) for every code point whose lower, upper
    or casefold in Python differs from the database's lower or upper."""
    cased = [
        chr(c)
        for c in range(1, 0x110000)
        if not 0xD800 <= c <= 0xDFFF
        and (chr(c).lower() != chr(c) or chr(c).upper() != chr(c) or chr(c).casefold() != chr(c))
    ]
    with connection.cursor() as cursor:
        cursor.execute("SELECT c, lower(c), upper(c) FROM unnest(%s::text[]) AS c", [cased])
        rows = cursor.fetchall()
    return [
        (c, lower, upper)
        for c, lower, upper in rows
        if lower != c.lower() or upper != c.upper() or lower != c.casefold()
    ]


def sql_lower(values: list[str]) -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT v, lower(v) FROM unnest(%s::text[]) AS v", [values])
        return dict(cursor.fetchall())


def test_every_spelling_the_database_calls_one_address_has_one_limit_row_and_one_account():
    """Walk every code point whose case mappings differ between Python and the
    database; each spelling of an address built from it (Python's lower,
    upper and casefold, the database's lower and upper) must hit the limit
    row and the account of the address the database says it is."""
    points = differing_code_points()
    assert any(c == "\u0130" for c, _, _ in points)  # the reported one: İ
    variants = sorted(
        {
            f"x{v}y@example.com"
            for c, lower, upper in points
            for v in (c, c.lower(), c.upper(), c.casefold(), lower, upper)
        }
    )
    canonical = sql_lower(variants)
    # One account per address the database knows, under its first spelling.
    owners = {}
    for email in variants:
        owners.setdefault(canonical[email], email)
    User.objects.bulk_create([User(email=email, password="!") for email in owners.values()])

    rows = {}
    for email in variants:
        limits.address_code_request(email=email, force=True)
        row = AddressLimit.objects.get(email=address_key(email), purpose=limits.VERIFY_EMAIL)
        rows.setdefault(canonical[email], set()).add(row.pk)
        user = user_by_email(email=email)
        assert user is not None, email
        assert user.email == owners[canonical[email]], email

    assert all(len(ids) == 1 for ids in rows.values())
    assert AddressLimit.objects.count() == len(set(canonical.values()))
    # Every request was counted on its address's one row.
    per_row = {canonical[e]: 0 for e in variants}
    for email in variants:
        per_row[canonical[email]] += 1
    for address, count in per_row.items():
        row = AddressLimit.objects.get(email=address)
        assert len(row.recent) == min(count, 5), address


def test_dotted_capital_i_shares_the_account_and_every_limit(api, settings):
    """The reported case through the API: İris@ is iris@ in PostgreSQL."""
    settings.SIGNUP_CODES_PER_HOUR = 5
    first = api.post_json(SIGNUP, {"email": "iris@example.com", "password": PASSWORD})
    assert first.status_code == 202
    assert (
        api.post_json(SIGNUP, {"email": "\u0130ris@example.com", "password": PASSWORD}).status_code
        == 202
    )
    assert User.objects.count() == 1

    assert api.post_json(RESEND, {"email": "iris@example.com"}).status_code == 202
    # The same address in another spelling: inside the cooldown of that resend.
    assert api.post_json(RESEND, {"email": "\u0130RIS@example.com"}).status_code == 429
    assert api.post_json(RESEND, {"email": "\u0130ris@example.com"}).status_code == 429
    assert AddressLimit.objects.count() == 1


def test_wrong_codes_in_every_spelling_count_on_one_address(api):
    make_user("iris@example.com")
    spellings = ["iris@example.com", "\u0130ris@example.com", "IRIS@example.com"]
    answers = [
        api.post_json(VERIFY, verify_body(spellings[n % 3], "000000")).status_code for n in range(6)
    ]

    assert answers == [400] * 5 + [429]
    # One count for every spelling: 5 wrong codes, and the refused 6th (counted too).
    assert AddressCounter.objects.get().failures == 6
