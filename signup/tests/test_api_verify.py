"""POST /api/v1/signup/verify: 200, one 400 for every failure, 429 after 5 wrong attempts."""

import logging
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

import signup.codes
import signup.flows.codes
import signup.flows.verification
from signup.models import AddressCounter, AddressLimit, User, VerificationCode
from signup.tests.conftest import (
    INVALID_CODE,
    PASSWORD,
    RESEND,
    SIGNUP,
    VERIFY,
    is_plain_detail,
    issue_code,
    make_user,
    outbox_kinds,
    row_counts,
    signup_token,
    verify_body,
)

pytestmark = pytest.mark.django_db

EMAIL = "ada@example.com"


def wrong_codes(email: str) -> int:
    """The address's wrong-code count for verification (signup.limits)."""
    return AddressCounter.objects.get(key=email, kind="code:verify_email").failures


def verify(api, code, email=EMAIL, token=None):
    return api.post_json(VERIFY, verify_body(email, code, token))


def wrong(code: str) -> str:
    """A well-formed code that is certainly not code."""
    return f"{(int(code) + 1) % 10**6:06d}"


@pytest.fixture
def user():
    return make_user(EMAIL)


def test_right_code_is_200_and_verifies_the_account(api, user):
    code = issue_code(user)

    response = verify(api, code)

    assert response.status_code == 200
    assert response.json() == {"status": "verified", "email": EMAIL}
    user.refresh_from_db()
    assert user.is_verified
    assert timezone.now() - user.email_verified_at < timedelta(seconds=10)
    assert VerificationCode.objects.get().used_at is not None


def test_address_is_matched_case_insensitively_and_echoed_normalized(api):
    user = make_user("Ada@Example.com")
    code = issue_code(user)

    response = verify(api, code, email="ADA@EXAMPLE.COM")

    assert response.status_code == 200
    assert response.json() == {"status": "verified", "email": "ADA@example.com"}
    user.refresh_from_db()
    assert user.is_verified


def test_signup_then_verify_through_the_api(api):
    answer = api.post_json(SIGNUP, {"email": EMAIL, "password": PASSWORD})
    assert answer.status_code == 202
    code = issue_code(User.objects.get())  # what the worker does for the outbox row

    assert verify(api, code, token=answer.json()["verification_token"]).status_code == 200
    assert User.objects.get().is_verified


def _expired(user):
    code = issue_code(user)
    VerificationCode.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    return code


def _used(user):
    code = issue_code(user)
    signup.flows.verification.email_verify(
        email=EMAIL, code=code, verification_token=signup_token(EMAIL)
    )
    return code


def _superseded(user):
    old = issue_code(user)
    while issue_code(user) == old:  # one chance in a million; then issue again
        pass
    return old


FAILURES = {
    "wrong": lambda user: wrong(issue_code(user)),
    "expired": _expired,
    "used": _used,
    "superseded": _superseded,
    "no-code-issued": lambda user: "042917",
    "five-digits": lambda user: issue_code(user)[:5],
    "seven-digits": lambda user: issue_code(user) + "0",
    "letters": lambda user: "abcdef",
    "padded": lambda user: f" {issue_code(user)} ",
}


@pytest.mark.parametrize("failure", FAILURES)
def test_every_failure_is_the_same_400(api, user, failure):
    code = FAILURES[failure](user)
    verified_before = User.objects.get().email_verified_at

    response = verify(api, code)

    assert response.status_code == 400
    assert response.json() == INVALID_CODE
    assert User.objects.get().email_verified_at == verified_before


def test_unknown_address_is_the_same_400_and_counts_the_attempt(api, user):
    """Only the unknown address's own attempt count is written (as for any address)."""
    code = issue_code(user)
    before = row_counts()

    response = verify(api, code, email="nobody@example.com")

    assert response.status_code == 400
    assert response.json() == INVALID_CODE
    assert row_counts() == {**before, "AddressCounter": before["AddressCounter"] + 1}
    assert wrong_codes("nobody@example.com") == 1
    assert VerificationCode.objects.get().used_at is None


def test_failures_are_byte_identical(api, user):
    """Wrong, expired, used, unknown: one body, so the answer tells nothing."""
    wrong_code = verify(api, wrong(issue_code(user)))
    expired = verify(api, _expired(user))
    used = verify(api, _used(user))
    unknown = verify(api, "042917", email="nobody@example.com")

    bodies = {r.content for r in (wrong_code, expired, used, unknown)}
    assert bodies == {b'{"detail": "Invalid or expired code.", "code": "invalid_code"}'}
    assert {r.status_code for r in (wrong_code, expired, used, unknown)} == {400}


def test_code_works_until_just_before_it_expires(api, user):
    code = issue_code(user)
    row = VerificationCode.objects.get()
    assert row.expires_at - row.created_at == timedelta(minutes=10)
    VerificationCode.objects.update(expires_at=timezone.now() + timedelta(seconds=5))

    assert verify(api, code).status_code == 200


def test_code_is_single_use(api, user):
    code = issue_code(user)

    assert verify(api, code).status_code == 200
    second = verify(api, code)

    assert second.status_code == 400
    assert second.json() == INVALID_CODE


def test_issuing_a_new_code_kills_the_old_one(api, user, monkeypatch):
    codes = iter(["111111", "222222"])
    monkeypatch.setattr(signup.codes, "code_generate", lambda: next(codes))
    old = issue_code(user)
    new = issue_code(user)

    assert verify(api, old).status_code == 400
    assert verify(api, new).status_code == 200
    # Still dead once the newer code is used up: it did not come back to life.
    assert verify(api, old).status_code == 400


def test_a_wrong_attempt_is_counted_on_the_address(api, user):
    code = issue_code(user)

    verify(api, wrong(code))
    verify(api, wrong(code), email=EMAIL.upper())

    assert wrong_codes(EMAIL) == 2


def test_five_wrong_attempts_kill_the_code_even_for_the_right_one(api, user):
    code = issue_code(user)
    answers = [
        verify(api, wrong(code)).status_code for _ in range(settings.SIGNUP_CODE_MAX_ATTEMPTS)
    ]

    locked = verify(api, code)

    assert answers == [400] * 5
    assert locked.status_code == 429
    assert is_plain_detail(locked)
    assert "resend" in locked.json()["detail"]
    assert locked["Retry-After"] == str(settings.SIGNUP_CODE_COOLDOWN_SECONDS)
    user.refresh_from_db()
    assert not user.is_verified
    assert VerificationCode.objects.get().used_at is not None  # dead, not verified
    # And it stays dead.
    assert verify(api, code).status_code == 429


def test_a_resend_that_sends_nothing_does_not_bring_the_dead_code_back(api, user, clock):
    """The resend resets the count, but the five hourly codes are spent, so
    no new code goes out: the code killed by the fifth wrong try stays dead."""
    code = issue_code(user)
    AddressLimit.objects.create(email=EMAIL, recent=[clock.now - 60 * k for k in range(1, 6)])
    for _ in range(settings.SIGNUP_CODE_MAX_ATTEMPTS):
        verify(api, wrong(code))

    assert api.post_json(RESEND, {"email": EMAIL}).status_code == 202
    assert outbox_kinds(user) == []

    assert verify(api, code).status_code == 400


def test_four_wrong_attempts_still_let_the_right_code_in(api, user):
    code = issue_code(user)
    for _ in range(settings.SIGNUP_CODE_MAX_ATTEMPTS - 1):
        assert verify(api, wrong(code)).status_code == 400

    assert verify(api, code).status_code == 200


def test_a_fresh_code_after_the_lock_works(api, user):
    code = issue_code(user)
    for _ in range(settings.SIGNUP_CODE_MAX_ATTEMPTS):
        verify(api, wrong(code))
    assert verify(api, code).status_code == 429

    assert api.post_json(RESEND, {"email": EMAIL}).status_code == 202
    fresh = issue_code(user)  # as the worker does for the queued email

    assert verify(api, fresh).status_code == 200


def test_a_new_code_from_the_worker_alone_does_not_reset_the_count(api, user):
    """Only a resend (which anyone can send, for any address) resets it: a
    reset by the worker would show, for real accounts only, as 400 after 429."""
    code = issue_code(user)
    for _ in range(settings.SIGNUP_CODE_MAX_ATTEMPTS):
        verify(api, wrong(code))

    assert verify(api, issue_code(user)).status_code == 429


@pytest.mark.parametrize("kind", ["unknown", "unverified", "verified"])
def test_the_429_comes_after_five_wrong_codes_for_any_address(api, kind):
    """Issue 8, point 3: counted per address, known or not, so the 429 does
    not tell whether the address has an account (it came only where an
    unverified account had a live code)."""
    if kind != "unknown":
        issue_code(make_user(EMAIL, verified=kind == "verified"))
    answers = [verify(api, "000000").status_code for _ in range(6)]

    assert answers == [400] * 5 + [429]


def test_the_429_is_byte_identical_for_every_kind_of_address(api):
    issue_code(make_user("unv@example.com"))
    make_user("ver@example.com", verified=True)
    emails = ["unv@example.com", "ver@example.com", "nobody@example.com"]
    answers = []
    for email in emails:
        for _ in range(settings.SIGNUP_CODE_MAX_ATTEMPTS):
            verify(api, "000000", email=email)
        answers.append(verify(api, "000000", email=email))

    assert answers[0].status_code == 429
    assert is_plain_detail(answers[0])
    assert answers[0].json()["code"] == "too_many_attempts"
    assert len({(r.status_code, r.content, tuple(sorted(r.headers.items()))) for r in answers}) == 1


@pytest.mark.django_db(transaction=True)
def test_verify_runs_the_same_statements_for_every_kind_of_address():
    """Equal work (issue 8, point 3): the same SQL, values aside, for an
    unknown, an unverified (live code) and a verified address, first and
    later attempts alike; before, an unknown address cost one query."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from core.sqlshape import sql_shape

    issue_code(make_user("unv@example.com"))
    make_user("ver@example.com", verified=True)
    shapes = {}
    for email in ("unv@example.com", "ver@example.com", "nobody@example.com"):
        for attempt in (1, 2):
            with CaptureQueriesContext(connection) as ctx:
                response = Client().post(
                    VERIFY, verify_body(email, "000000"), content_type="application/json"
                )
            assert response.status_code == 400
            shapes[(email, attempt)] = [sql_shape(q["sql"]) for q in ctx.captured_queries]

    assert len({tuple(shape) for shape in shapes.values()}) == 1, shapes


def test_verify_queues_nothing(api, user):
    verify(api, issue_code(user))

    assert outbox_kinds() == []


def test_the_comparison_goes_through_signup_codes_in_constant_time(api, user, monkeypatch):
    code = issue_code(user)
    calls = []
    real_matches = signup.codes.code_matches
    real_compare = signup.codes.hmac.compare_digest

    def spy_matches(*args, **kwargs):
        calls.append("code_matches")
        return real_matches(*args, **kwargs)

    def spy_compare(a, b):
        calls.append("compare_digest")
        return real_compare(a, b)

    monkeypatch.setattr(signup.flows.codes, "code_matches", spy_matches)
    monkeypatch.setattr(signup.codes.hmac, "compare_digest", spy_compare)

    assert verify(api, wrong(code)).status_code == 400
    assert verify(api, code).status_code == 200
    assert calls == ["code_matches", "compare_digest"] * 2


def test_code_is_stored_only_as_a_keyed_hash(user):
    code = issue_code(user)

    row = VerificationCode.objects.get()
    assert code not in row.code_hash
    assert row.code_hash == signup.codes.code_hash(
        code, user_id=user.pk, purpose=VerificationCode.Purpose.VERIFY_EMAIL
    )


def test_neither_code_nor_hash_is_ever_logged(api, user, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(signup.codes, "code_generate", lambda: "913847")
    code = issue_code(user)
    code_hash = VerificationCode.objects.get().code_hash

    verify(api, "123456")
    verify(api, code)
    verify(api, code)
    api.post_json(SIGNUP, {"email": EMAIL, "password": PASSWORD})

    assert caplog.records  # the services do log these requests
    logged = "\n".join(
        f"{r.getMessage()} {r.args!r} {getattr(r, 'request', '')}" for r in caplog.records
    )
    assert code not in logged
    assert code_hash not in logged
    assert "123456" not in logged


@pytest.mark.parametrize(
    "email",
    ["ΟΔΥΣΣΕΑΣ@example.com", "İLKER@example.com", "Jörg@Example.com"],
    ids=["final-sigma", "dotted-capital-i", "umlaut"],
)
def test_internationalized_address_can_verify(api, email):
    """Python's str.lower() and PostgreSQL's LOWER() disagree on some letters
    (final sigma, dotted capital I): the lookup must lower on the same side as
    the unique index, or such an account could never be found again."""
    response = api.post_json(SIGNUP, {"email": email, "password": PASSWORD})
    assert response.status_code == 202
    stored = response.json()["email"]
    code = issue_code(User.objects.get())

    token = response.json()["verification_token"]
    assert verify(api, code, email=stored, token=token).status_code == 200
    assert User.objects.get().is_verified
