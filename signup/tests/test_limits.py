"""signup.limits as other code purposes (login, password reset) use it: each
purpose has its own budgets on the same canonical address."""

import pytest
from django.db import transaction

from signup import limits
from signup.models import AddressCounter

pytestmark = pytest.mark.django_db


def fail(email: str, purpose: str) -> bool:
    """One wrong code (its reservation kept); returns whether it was refused."""
    with transaction.atomic():
        return not limits.code_attempt_reserve(email=email, purpose=purpose).allowed


def test_purposes_have_their_own_attempt_counts():
    answers = [fail("Ada@example.com", "login") for _ in range(6)]

    assert answers == [False] * 5 + [True]
    assert fail("ada@example.com", limits.VERIFY_EMAIL) is False
    assert AddressCounter.objects.filter(key="ada@example.com").count() == 2


def test_an_answered_ask_resets_the_count_of_its_purpose_only(clock):
    for _ in range(5):
        fail("ada@example.com", "login")
        fail("ada@example.com", "reset")

    assert limits.address_code_ask(email="ADA@example.com", purpose="login").allowed

    assert fail("ada@example.com", "login") is False
    assert fail("ada@example.com", "reset") is True


def test_asks_are_limited_per_purpose(clock):
    assert limits.address_code_ask(email="ada@example.com", purpose="login").allowed
    refused = limits.address_code_ask(email="ada@example.com", purpose="login")

    assert (refused.allowed, refused.send, refused.retry_after) == (False, False, 60)
    assert limits.address_code_ask(email="ada@example.com", purpose="reset").allowed
