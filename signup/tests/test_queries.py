"""Every signup endpoint issues a fixed number of SQL queries, whoever else exists.

The counts are for a committed request (transaction=True, so the on-commit
enqueue runs as in production, and no test savepoints are
counted). A change in a count is a change in the request's cost: update the
constant only with a reason, in the comment next to it.
"""

import time

import pytest
from django.contrib.auth.hashers import make_password
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from messaging.models import Outbox
from signup.models import AddressLimit, Profile, User, Wallet
from signup.tests.conftest import (
    PASSWORD,
    RESEND,
    SIGNUP,
    VERIFY,
    issue_code,
    make_user,
    run_queued_resends,
    verify_body,
)

pytestmark = pytest.mark.django_db(transaction=True)

# Counted as Django logs them, transaction statements included. None of them
# depends on how many other users (staff or not) exist.
#
# The per-address limit row is created or locked by one statement (INSERT ...
# ON CONFLICT DO UPDATE ... RETURNING: "upsert limit row"), the same for a
# known and an unknown address (issue 8: equal work; it was a SELECT FOR
# UPDATE, then SAVEPOINT, INSERT, RELEASE for a first request).
#
# Every signup path records the signup under its verification token (issue 18,
# pre-account hijacking): one upsert of signup_pendingsignup.
#
# New address: BEGIN, INSERT user, INSERT profile, INSERT wallet, upsert the
# pending signup, upsert limit row, UPDATE it, INSERT both outbox rows (one
# statement, stamped enqueued: the enqueue on commit writes nothing, issue 23),
# COMMIT.
SIGNUP_NEW_QUERIES = 9
# Taken (verified or not), its limit row out of the cooldown: BEGIN, INSERT user
# (fails on the unique index), ROLLBACK, BEGIN, SELECT user, upsert the pending
# signup, upsert limit row, UPDATE it, INSERT outbox row, COMMIT.
SIGNUP_TAKEN_QUERIES = 10
# Taken, within the cooldown: as above, minus INSERT outbox (the limit row's
# UPDATE runs either way: one shape).
SIGNUP_TAKEN_LIMITED_QUERIES = 9
# Wrong codes are counted as failed logins are (issue 19: one mechanism): one
# upsert reserves the attempt on the address's count before the check; a
# right code gives it back.
#
# Right code: BEGIN, SELECT pending signup by token hash, reserve (upsert the
# count), SELECT code FOR UPDATE joined with its user by Lower(email), UPDATE
# the count (given back), UPDATE code, UPDATE user (verified, that signup's
# password), UPDATE profile (its name), DELETE the account's pending signups,
# COMMIT.
VERIFY_OK_QUERIES = 10
# Wrong code, for any address: BEGIN, SELECT pending signup by token hash,
# reserve (upsert the count), SELECT code, COMMIT.
VERIFY_WRONG_QUERIES = 5
# Any address (unverified, verified, unknown, first request or not), out of
# the cooldown: BEGIN, upsert limit row, UPDATE it, UPDATE the wrong-code count
# (restarts; 0 rows where none), COMMIT; and one enqueue of
# signup.tasks.resend_code, whose worker looks the account up and writes the
# outbox row (issue 8: equal work; it was 7 for an unverified account, 7 for
# a first request and 5 for the others).
RESEND_QUERIES = 5
RESEND_FIRST_QUERIES = 5
# Within the cooldown: BEGIN, upsert limit row, COMMIT.
RESEND_LIMITED_QUERIES = 3

POPULATIONS = {"empty": (0, 0), "200-staff-200-users": (200, 200)}


@pytest.fixture(params=POPULATIONS.values(), ids=POPULATIONS.keys())
def population(request):
    """Other accounts (staff and not) that no signup query may scale with."""
    staff, ordinary = request.param
    password = make_password(PASSWORD)
    users = User.objects.bulk_create(
        [
            User(email=f"staff{n}@example.com", password=password, is_staff=True)
            for n in range(staff)
        ]
        + [User(email=f"user{n}@example.com", password=password) for n in range(ordinary)]
    )
    Profile.objects.bulk_create([Profile(user=user) for user in users])
    Wallet.objects.bulk_create([Wallet(user=user) for user in users])
    assert User.objects.filter(is_staff=True).count() == staff
    return users


def queries_for(path: str, body: dict, status: int) -> tuple[int, str]:
    client = Client(raise_request_exception=True)
    with CaptureQueriesContext(connection) as ctx:
        response = client.post(path, body, content_type="application/json")
    assert response.status_code == status, response.content
    return len(ctx.captured_queries), "\n".join(q["sql"] for q in ctx.captured_queries)


def limit_row_from_long_ago(email: str) -> None:
    """As an account signed up two hours ago leaves it."""
    AddressLimit.objects.create(email=email, recent=[time.time() - 7200], asks=[])


@pytest.mark.usefixtures("population")
def test_signup_new_address():
    count, sql = queries_for(SIGNUP, {"email": "ada@example.com", "password": PASSWORD}, 202)

    assert count == SIGNUP_NEW_QUERIES, sql
    assert Outbox.objects.filter(enqueued_at__isnull=False).count() == 2


@pytest.mark.usefixtures("population")
@pytest.mark.parametrize("verified", [False, True], ids=["unverified", "verified"])
def test_signup_taken_address(verified):
    user = make_user("ada@example.com", verified=verified)
    limit_row_from_long_ago("ada@example.com")

    count, sql = queries_for(SIGNUP, {"email": "ada@example.com", "password": PASSWORD}, 202)

    assert count == SIGNUP_TAKEN_QUERIES, sql
    assert Outbox.objects.filter(user=user).count() == 1
    limited, limited_sql = queries_for(
        SIGNUP, {"email": "ada@example.com", "password": PASSWORD}, 202
    )
    assert limited == SIGNUP_TAKEN_LIMITED_QUERIES, limited_sql
    assert Outbox.objects.filter(user=user).count() == 1


@pytest.mark.usefixtures("population")
def test_verify_right_code():
    code = issue_code(make_user("ada@example.com"))

    count, sql = queries_for(VERIFY, verify_body("ada@example.com", code), 200)

    assert count == VERIFY_OK_QUERIES, sql


@pytest.mark.usefixtures("population")
def test_verify_wrong_code():
    code = issue_code(make_user("ada@example.com"))
    wrong = f"{(int(code) + 1) % 10**6:06d}"

    count, sql = queries_for(VERIFY, verify_body("ada@example.com", wrong), 400)

    assert count == VERIFY_WRONG_QUERIES, sql


@pytest.mark.usefixtures("population")
def test_resend():
    user = make_user("ada@example.com")
    limit_row_from_long_ago("ada@example.com")

    count, sql = queries_for(RESEND, {"email": "ada@example.com"}, 202)
    limited, limited_sql = queries_for(RESEND, {"email": "ada@example.com"}, 429)

    assert count == RESEND_QUERIES, sql
    assert limited == RESEND_LIMITED_QUERIES, limited_sql
    assert run_queued_resends() == 1
    assert Outbox.objects.filter(user=user).count() == 1


@pytest.mark.usefixtures("population")
def test_resend_first_request_for_an_unknown_address():
    count, sql = queries_for(RESEND, {"email": "nobody@example.com"}, 202)

    assert count == RESEND_FIRST_QUERIES, sql
