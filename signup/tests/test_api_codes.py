"""Login by emailed code and password reset: 202 for any address, codes bound
to their purpose, one 400, 429 after 5 wrong codes (per address, known or not)."""

import pytest
from django.conf import settings

from signup.messages import LOGIN_CODE_EMAIL, RESET_CODE_EMAIL
from signup.models import AccessToken, User
from signup.tests.accounts_helpers import (
    CODE,
    CODE_VERIFY,
    EMAIL,
    INVALID_CODE,
    LOGIN,
    ME,
    NEW_PASSWORD,
    PASSWORD,
    RESET,
    RESET_CONFIRM,
    Purpose,
    bearer,
    code_for,
    token_for,
    verified_user,
    wrong,
)
from signup.tests.conftest import VERIFY, issue_code, make_user, outbox_kinds, verify_body

pytestmark = pytest.mark.django_db


def code_login(api, code, email=EMAIL):
    return api.post_json(CODE_VERIFY, {"email": email, "code": code})


def reset_confirm(api, code, email=EMAIL, password=NEW_PASSWORD):
    return api.post_json(RESET_CONFIRM, {"email": email, "code": code, "password": password})


# --- asking for a code ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "kind", "account", "queued"),
    [
        (CODE, LOGIN_CODE_EMAIL, "verified", True),
        (CODE, LOGIN_CODE_EMAIL, "unverified", False),
        (CODE, LOGIN_CODE_EMAIL, "deactivated", False),
        (CODE, LOGIN_CODE_EMAIL, "none", False),
        (RESET, RESET_CODE_EMAIL, "verified", True),
        (RESET, RESET_CODE_EMAIL, "unverified", True),
        (RESET, RESET_CODE_EMAIL, "deactivated", False),
        (RESET, RESET_CODE_EMAIL, "none", False),
    ],
)
def test_202_for_any_address_and_a_code_only_to_an_eligible_account(
    api, path, kind, account, queued
):
    if account != "none":
        make_user(EMAIL, verified=account != "unverified", is_active=account != "deactivated")

    response = api.post_json(path, {"email": "Ada@EXAMPLE.com"})

    assert response.status_code == 202
    assert response.json() == {"status": "code_sent", "email": "Ada@example.com"}
    assert outbox_kinds() == ([kind] if queued else [])


@pytest.mark.parametrize("path", [CODE, RESET])
@pytest.mark.parametrize("known", [True, False], ids=["known", "unknown"])
def test_cooldown_429_for_known_and_unknown_alike(api, clock, path, known):
    if known:
        verified_user()

    first = api.post_json(path, {"email": EMAIL})
    second = api.post_json(path, {"email": "ADA@example.com"})
    clock.advance(settings.SIGNUP_CODE_COOLDOWN_SECONDS)
    third = api.post_json(path, {"email": EMAIL})

    assert (first.status_code, second.status_code, third.status_code) == (202, 429, 202)
    assert second.json()["code"] == "rate_limited"
    assert 0 < int(second["Retry-After"]) <= settings.SIGNUP_CODE_COOLDOWN_SECONDS


def test_hourly_cap(api, clock):
    verified_user()
    answers = []
    for _ in range(settings.SIGNUP_CODES_PER_HOUR + 1):
        answers.append(api.post_json(CODE, {"email": EMAIL}).status_code)
        clock.advance(settings.SIGNUP_CODE_COOLDOWN_SECONDS)

    assert answers == [202] * settings.SIGNUP_CODES_PER_HOUR + [429]


@pytest.mark.parametrize("path", [CODE, RESET])
def test_a_bad_address_is_422(api, path):
    assert api.post_json(path, {"email": "nope"}).status_code == 422


# --- logging in with a code -----------------------------------------------------------


def test_right_login_code_gets_a_working_token(api):
    user = verified_user()
    code = code_for(user, Purpose.LOGIN)

    response = code_login(api, code, email="ADA@example.com")

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert api.get(ME, **bearer(body["access_token"])).status_code == 200


def test_a_login_code_works_once(api):
    code = code_for(verified_user(), Purpose.LOGIN)

    assert code_login(api, code).status_code == 200
    assert code_login(api, code).json() == INVALID_CODE


def test_an_expired_login_code_is_400(api):
    from datetime import timedelta

    from django.utils import timezone

    from signup.models import VerificationCode

    code = code_for(verified_user(), Purpose.LOGIN)
    VerificationCode.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    assert code_login(api, code).json() == INVALID_CODE


def test_a_newer_login_code_kills_the_older(api):
    user = verified_user()
    first = code_for(user, Purpose.LOGIN)
    second = code_for(user, Purpose.LOGIN)

    if first != second:
        assert code_login(api, first).json() == INVALID_CODE
    assert code_login(api, second).status_code == 200


@pytest.mark.parametrize("state", ["deactivated", "unverified"])
def test_a_login_code_does_not_work_for_an_ineligible_account(api, state):
    user = verified_user()
    code = code_for(user, Purpose.LOGIN)
    if state == "deactivated":
        User.objects.filter(pk=user.pk).update(is_active=False)
    else:
        User.objects.filter(pk=user.pk).update(email_verified_at=None)

    assert code_login(api, code).json() == INVALID_CODE
    assert not AccessToken.objects.exists()


@pytest.mark.parametrize("known", [True, False], ids=["known", "unknown"])
def test_429_after_5_wrong_codes_for_known_and_unknown_addresses(api, known):
    code = code_for(verified_user(), Purpose.LOGIN) if known else "123456"
    limit = settings.SIGNUP_CODE_MAX_ATTEMPTS

    answers = [
        code_login(api, wrong(code), email="other@example.com" if not known else EMAIL)
        for _ in range(limit)
    ]
    locked = code_login(api, code, email="other@example.com" if not known else EMAIL)

    assert [r.json() for r in answers] == [INVALID_CODE] * limit
    assert locked.status_code == 429
    assert locked.json()["code"] == "too_many_attempts"
    assert int(locked["Retry-After"]) > 0


@pytest.mark.parametrize(
    ("purpose", "path", "use"),
    [(Purpose.LOGIN, CODE, code_login), (Purpose.RESET, RESET, reset_confirm)],
    ids=["login", "reset"],
)
def test_the_fifth_wrong_code_kills_the_live_code_so_a_new_request_cannot_revive_it(
    api, clock, purpose, path, use
):
    """The count restarts at the next answered request; the old code must not
    get 5 more guesses before the worker mails its successor (as for verify)."""
    user = verified_user()
    code = code_for(user, purpose)
    for _ in range(settings.SIGNUP_CODE_MAX_ATTEMPTS):
        assert use(api, wrong(code)).status_code == 400

    clock.advance(settings.SIGNUP_CODE_COOLDOWN_SECONDS)
    assert api.post_json(path, {"email": EMAIL}).status_code == 202  # job not run yet

    assert use(api, code).json() == INVALID_CODE
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert not AccessToken.objects.exists()


def test_wrong_codes_are_counted_across_spellings_and_a_new_request_restarts_the_count(api, clock):
    user = verified_user()
    code = code_for(user, Purpose.LOGIN)
    spellings = ["ada@example.com", "ADA@example.com", "Ada@EXAMPLE.COM"]
    for n in range(settings.SIGNUP_CODE_MAX_ATTEMPTS):
        code_login(api, wrong(code), email=spellings[n % 3])
    assert code_login(api, code).status_code == 429

    assert api.post_json(CODE, {"email": "aDa@example.com"}).status_code == 202
    fresh = code_for(user, Purpose.LOGIN)  # the worker sends the new code
    assert code_login(api, fresh).status_code == 200


def test_equal_work_known_and_unknown_address_run_the_same_statements(api):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from core.sqlshape import sql_shape

    code = code_for(verified_user(), Purpose.LOGIN)
    shapes = {}
    for email in (EMAIL, "nobody@example.com"):
        with CaptureQueriesContext(connection) as captured:
            assert code_login(api, wrong(code), email=email).status_code == 400
        shapes[email] = [sql_shape(q["sql"]) for q in captured.captured_queries]

    assert shapes[EMAIL] == shapes["nobody@example.com"]


# --- purposes never cross -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("purpose", "use"),
    [
        (Purpose.VERIFY_EMAIL, "login"),
        (Purpose.VERIFY_EMAIL, "reset"),
        (Purpose.LOGIN, "reset"),
        (Purpose.LOGIN, "verify"),
        (Purpose.RESET, "login"),
        (Purpose.RESET, "verify"),
    ],
)
def test_a_code_only_works_for_its_own_purpose(api, purpose, use):
    user = make_user(EMAIL, verified=purpose != Purpose.VERIFY_EMAIL)
    code = issue_code(user) if purpose == Purpose.VERIFY_EMAIL else code_for(user, purpose)
    if use == "verify" or purpose == Purpose.VERIFY_EMAIL:
        # verify only looks at unverified accounts; login needs a verified one
        User.objects.filter(pk=user.pk).update(
            email_verified_at=None if use == "verify" else user.date_joined
        )

    if use == "login":
        response = code_login(api, code)
    elif use == "reset":
        response = reset_confirm(api, code)
    else:
        response = api.post_json(VERIFY, verify_body(EMAIL, code))

    assert response.status_code == 400
    assert not AccessToken.objects.exists()
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


# --- password reset -----------------------------------------------------------------------


def test_reset_sets_the_password_gives_a_token_and_revokes_every_older_token(api):
    user = verified_user()
    old_tokens = [token_for(user), token_for(user)]
    code = code_for(user, Purpose.RESET)

    response = reset_confirm(api, code, email="ADA@example.com")

    assert response.status_code == 200
    new = response.json()["access_token"]
    assert api.get(ME, **bearer(new)).status_code == 200
    for old in old_tokens:
        assert api.get(ME, **bearer(old)).status_code == 401
    assert api.post_json(LOGIN, {"email": EMAIL, "password": PASSWORD}).status_code == 400
    assert api.post_json(LOGIN, {"email": EMAIL, "password": NEW_PASSWORD}).status_code == 200
    user.refresh_from_db()
    assert user.password.startswith("argon2$argon2id$")


def test_reset_verifies_an_unverified_address(api):
    user = make_user(EMAIL)
    code = code_for(user, Purpose.RESET)

    assert reset_confirm(api, code).status_code == 200
    user.refresh_from_db()
    assert user.is_verified


@pytest.mark.parametrize(
    ("password", "type_"),
    [
        ("short", "password_too_short"),
        ("password123", "password_too_common"),
        ("12345678901234", "password_entirely_numeric"),
        ("ada@example.com!", "password_too_similar"),
    ],
)
def test_reset_applies_the_password_validators_422(api, password, type_):
    """The field error's type is Django's validator code, as for signup (docs/api.md)."""
    user = verified_user()
    code = code_for(user, Purpose.RESET)

    response = reset_confirm(api, code, password=password)

    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "password"]
    assert error["type"] == type_
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_reset_with_a_wrong_code_is_400_and_changes_nothing(api):
    user = verified_user()
    token = token_for(user)
    code = code_for(user, Purpose.RESET)

    assert reset_confirm(api, wrong(code)).json() == INVALID_CODE
    assert api.get(ME, **bearer(token)).status_code == 200
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_reset_429_after_5_wrong_codes(api):
    code = code_for(verified_user(), Purpose.RESET)
    for _ in range(settings.SIGNUP_CODE_MAX_ATTEMPTS):
        assert reset_confirm(api, wrong(code)).status_code == 400

    response = reset_confirm(api, code)

    assert response.status_code == 429
    assert response.json()["code"] == "too_many_attempts"


def test_reset_of_a_deactivated_account_is_400(api):
    user = verified_user()
    code = code_for(user, Purpose.RESET)
    User.objects.filter(pk=user.pk).update(is_active=False)

    assert reset_confirm(api, code).json() == INVALID_CODE
