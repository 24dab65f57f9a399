"""POST /api/v1/signup/resend: 202 for any address; per-address 60 s cooldown and 5 an hour.

The clock of signup.limits is frozen (the clock fixture), and the hourly cap is
reached by editing AddressLimit.asks (resends: they decide the 429) and
.recent (every code sent: it decides silently whether one more goes out)
instead of sleeping.
"""

import json

import pytest
from django.conf import settings

from messaging.models import Outbox
from signup.messages import VERIFICATION_EMAIL
from signup.models import AddressLimit
from signup.tests.conftest import (
    PASSWORD,
    RESEND,
    SIGNUP,
    is_plain_detail,
    make_user,
    outbox_kinds,
)

pytestmark = pytest.mark.django_db

COOLDOWN = settings.SIGNUP_CODE_COOLDOWN_SECONDS
PER_HOUR = settings.SIGNUP_CODES_PER_HOUR


def resend(api, email):
    return api.post_json(RESEND, {"email": email})


def set_limits(email: str, *, asks: list[float] | None = None, recent=None) -> None:
    defaults = {"asks": asks or [], "recent": recent if recent is not None else asks or []}
    AddressLimit.objects.update_or_create(
        email=email.lower(), purpose="verify_email", defaults=defaults
    )


def assert_address_limited(response, retry_after: int):
    assert response.status_code == 429, response.content
    assert is_plain_detail(response)
    assert response["Retry-After"] == str(retry_after)
    assert f"try again in {retry_after} seconds" in response.json()["detail"]


def test_unknown_address_is_202_and_queues_nothing(api):
    response = resend(api, "nobody@Example.com")

    assert response.status_code == 202
    assert response.json() == {"status": "verification_pending", "email": "nobody@example.com"}
    assert outbox_kinds() == []
    # Kept for unknown addresses too, so a later 429 reveals nothing.
    assert AddressLimit.objects.filter(email="nobody@example.com").exists()


def test_unverified_account_gets_a_verification_email_queued(api):
    user = make_user("ada@example.com")

    response = resend(api, "ada@example.com")

    assert response.status_code == 202
    assert response.json() == {"status": "verification_pending", "email": "ada@example.com"}
    assert outbox_kinds(user) == [VERIFICATION_EMAIL]


def test_verified_account_is_202_and_queues_nothing(api):
    make_user("ada@example.com", verified=True)

    response = resend(api, "ada@example.com")

    assert response.status_code == 202
    assert outbox_kinds() == []


def test_inactive_account_is_202_and_queues_nothing(api):
    make_user("ada@example.com", is_active=False)

    assert resend(api, "ada@example.com").status_code == 202
    assert outbox_kinds() == []


def test_answers_are_byte_identical_apart_from_the_email(api):
    make_user("unv01@example.com")
    make_user("ver01@example.com", verified=True)

    responses = {
        e: resend(api, e) for e in ("new01@example.com", "unv01@example.com", "ver01@example.com")
    }

    shapes = {
        (
            r.status_code,
            r.content.replace(json.dumps(e).encode(), b"E"),
            tuple(sorted(r.headers.items())),
        )
        for e, r in responses.items()
    }
    assert len(shapes) == 1


def test_address_is_case_insensitive_for_the_limit(api, clock):
    user = make_user("Ada@Example.com")
    assert resend(api, "ada@example.com").status_code == 202

    assert_address_limited(resend(api, "ADA@EXAMPLE.COM"), COOLDOWN)
    assert outbox_kinds(user) == [VERIFICATION_EMAIL]


# --- the 60-second cooldown --------------------------------------------------


@pytest.mark.parametrize("verified", [None, False, True], ids=["unknown", "unverified", "verified"])
def test_second_resend_within_the_cooldown_is_429(api, clock, verified):
    if verified is not None:
        make_user("ada@example.com", verified=verified)
    assert resend(api, "ada@example.com").status_code == 202
    queued = outbox_kinds()

    clock.advance(20)
    response = resend(api, "ada@example.com")

    assert_address_limited(response, COOLDOWN - 20)
    assert outbox_kinds() == queued


def test_cooldown_ends_after_60_seconds(api, clock):
    user = make_user("ada@example.com")
    resend(api, "ada@example.com")

    clock.advance(COOLDOWN - 1)
    assert_address_limited(resend(api, "ada@example.com"), 1)
    clock.advance(1)  # exactly 60 s: no longer "within" the cooldown
    assert resend(api, "ada@example.com").status_code == 202

    assert outbox_kinds(user) == [VERIFICATION_EMAIL, VERIFICATION_EMAIL]


def test_a_refused_resend_does_not_extend_the_cooldown(api, clock):
    resend(api, "ada@example.com")
    for _ in range(5):
        clock.advance(10)
        resend(api, "ada@example.com")

    clock.advance(10)

    assert resend(api, "ada@example.com").status_code == 202


def test_resend_right_after_signup_answers_as_for_any_address_and_sends_nothing(api, clock):
    """Issue 8, point 2: the owner's signup must not show in resend's 429 or
    Retry-After (they told when the account was created). The cooldown
    still holds for the email itself, silently."""
    api.post_json(SIGNUP, {"email": "ada@example.com", "password": PASSWORD})

    response = resend(api, "ada@example.com")

    assert response.status_code == 202
    assert outbox_kinds().count(VERIFICATION_EMAIL) == 1


def test_resend_right_after_a_signup_of_a_taken_address_answers_as_for_any(api, clock):
    make_user("ada@example.com")
    api.post_json(SIGNUP, {"email": "ada@example.com", "password": PASSWORD})

    assert resend(api, "ada@example.com").status_code == 202
    assert outbox_kinds().count(VERIFICATION_EMAIL) == 1


def test_probing_resend_never_tells_when_the_owner_signed_up(api, clock):
    """The attack of issue 8, point 2: resend once a minute for an hour at a
    registered and at a never-registered address, the owner signing up in
    between: the two series of answers (status, Retry-After) are identical."""
    series = {}
    for email in ("owner@example.com", "nobody@example.com"):
        answers = []
        for minute in range(PER_HOUR + 2):
            if minute == 2 and email == "owner@example.com":
                api.post_json(SIGNUP, {"email": email, "password": PASSWORD})
            r = resend(api, email)
            answers.append((r.status_code, r.headers.get("Retry-After")))
            clock.advance(COOLDOWN)
        clock.advance(-COOLDOWN * (PER_HOUR + 2))
        series[email] = answers

    assert series["owner@example.com"] == series["nobody@example.com"]
    assert [status for status, _ in series["nobody@example.com"]].count(429) == 2


# --- 5 an hour -----------------------------------------------------------------


def test_sixth_code_within_the_hour_is_429(api, clock):
    user = make_user("ada@example.com")
    now = clock.now
    set_limits("ada@example.com", asks=[now - 3000, now - 2400, now - 1800, now - 1200, now - 600])

    response = resend(api, "ada@example.com")

    # The oldest of the five leaves the window at now - 3000 + 3600.
    assert_address_limited(response, 600)
    assert outbox_kinds(user) == []


def test_fifth_code_within_the_hour_is_allowed(api, clock):
    user = make_user("ada@example.com")
    now = clock.now
    set_limits("ada@example.com", asks=[now - 2400, now - 1800, now - 1200, now - 600])

    assert resend(api, "ada@example.com").status_code == 202
    assert outbox_kinds(user) == [VERIFICATION_EMAIL]
    assert len(AddressLimit.objects.get().recent) == PER_HOUR


def test_the_hour_is_a_sliding_window(api, clock):
    make_user("ada@example.com")
    now = clock.now
    set_limits("ada@example.com", asks=[now - 3601, now - 2400, now - 1800, now - 1200, now - 600])

    assert resend(api, "ada@example.com").status_code == 202


def test_hourly_cap_through_the_api_alone(api, clock):
    user = make_user("ada@example.com")
    statuses = []
    for _ in range(PER_HOUR + 1):
        statuses.append(resend(api, "ada@example.com").status_code)
        clock.advance(COOLDOWN)

    assert statuses == [202] * PER_HOUR + [429]
    assert outbox_kinds(user) == [VERIFICATION_EMAIL] * PER_HOUR
    clock.advance(3600 - (PER_HOUR + 1) * COOLDOWN)
    assert resend(api, "ada@example.com").status_code == 202


def test_resend_past_the_hourly_cap_of_codes_is_202_and_sends_nothing(api, clock):
    """Five codes went out this hour (signups count there), but no resend was
    refused: the answer is the one any address gets; no sixth code."""
    user = make_user("ada@example.com")
    now = clock.now
    set_limits(
        "ada@example.com", recent=[now - 3000, now - 2400, now - 1800, now - 1200, now - 600]
    )

    assert resend(api, "ada@example.com").status_code == 202
    assert outbox_kinds(user) == []


def test_taken_signup_respects_the_hourly_cap_silently(api, clock):
    user = make_user("ada@example.com")
    now = clock.now
    set_limits(
        "ada@example.com", recent=[now - 3000, now - 2400, now - 1800, now - 1200, now - 600]
    )

    response = api.post_json(SIGNUP, {"email": "ada@example.com", "password": PASSWORD})

    assert response.status_code == 202
    assert outbox_kinds(user) == []


# --- per address, never global ---------------------------------------------------


def test_limits_are_per_address(api, clock):
    make_user("ada@example.com")
    resend(api, "ada@example.com")
    assert resend(api, "ada@example.com").status_code == 429

    assert resend(api, "bob@example.com").status_code == 202
    assert (
        api.post_json(SIGNUP, {"email": "cy@example.com", "password": PASSWORD}).status_code == 202
    )


def test_a_capped_address_does_not_stop_anyone_else(api, clock):
    now = clock.now
    set_limits("noisy@example.com", asks=[now - 50 * k for k in range(PER_HOUR, 0, -1)])
    assert resend(api, "noisy@example.com").status_code == 429

    others = [resend(api, f"user{n}@example.com").status_code for n in range(5)]

    assert others == [202] * 5


def test_429_is_identical_for_unknown_and_existing_addresses(api, clock):
    """Same limit state, same clock: same bytes apart from nothing at all."""
    make_user("unv01@example.com")
    make_user("ver01@example.com", verified=True)
    emails = ["new01@example.com", "unv01@example.com", "ver01@example.com"]
    now = clock.now
    for email in emails:
        set_limits(email, asks=[now - 3000, now - 2400, now - 1800, now - 1200, now - 30])

    responses = [resend(api, email) for email in emails]

    assert_address_limited(responses[0], 600)
    assert (
        len({(r.status_code, r.content, tuple(sorted(r.headers.items()))) for r in responses}) == 1
    )
    assert outbox_kinds() == []


def test_cooldown_429_is_identical_for_unknown_and_existing_addresses(api, clock):
    make_user("unv01@example.com")
    make_user("ver01@example.com", verified=True)
    emails = ["new01@example.com", "unv01@example.com", "ver01@example.com"]
    for email in emails:
        resend(api, email)
    clock.advance(15)

    responses = [resend(api, email) for email in emails]

    assert_address_limited(responses[0], COOLDOWN - 15)
    assert (
        len({(r.status_code, r.content, tuple(sorted(r.headers.items()))) for r in responses}) == 1
    )


def test_every_answered_resend_enqueues_one_job_whatever_the_address(api, broker_queue_size):
    """Equal work (issue 8, point 3): the request never looks the account up
    and always enqueues; even a resend right after signup (whose email the
    code limits hold back) costs the same enqueue as one for an unknown address."""
    make_user("unv@example.com")
    make_user("ver@example.com", verified=True)
    api.post_json(SIGNUP, {"email": "new@example.com", "password": PASSWORD})
    emails = ["unv@example.com", "ver@example.com", "nobody@example.com", "new@example.com"]

    assert [resend(api, email).status_code for email in emails] == [202] * 4

    assert broker_queue_size("signup") == 4
    outbox_kinds()  # runs the jobs
    assert Outbox.objects.filter(user__email="unv@example.com").count() == 1
    assert Outbox.objects.filter(kind=VERIFICATION_EMAIL).count() == 2  # signup's + unv's
