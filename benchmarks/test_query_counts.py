"""The query-count gate: each request runs a fixed, written-down list of statements.

The same whether 0, 1 or 500 users and admins exist: nothing on the request
path may loop over rows. A new query (an N+1, a signal, a lazy load) fails the
test with the statements listed. CaptureQueriesContext sees what PostgreSQL
sees, transaction control included; transaction=True so the on-commit
enqueue runs as in production (it writes nothing since issue 23: the rows
are written stamped).
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from benchmarks.data import PASSWORD, fresh_email, population, unverified_user, verify_request
from benchmarks.gate import Row
from core.sqlshape import sql_shape

# The per-address limit row is created or locked by one upsert (INSERT ... ON
# CONFLICT DO UPDATE ... RETURNING) for a known and an unknown address alike
# (issue 8, equal work): signup -2 statements, resend -5, verify
# the same count with the upsert in place of the user lookup.
EXPECTED = {
    "signup": [
        "BEGIN",
        "INSERT signup_user",
        "INSERT signup_profile",
        "INSERT signup_wallet",
        "INSERT signup_addresslimit ON CONFLICT DO UPDATE (create or lock)",
        "UPDATE signup_addresslimit",
        "INSERT signup_pendingsignup ON CONFLICT DO UPDATE (this signup, its token's hash)",
        "INSERT messaging_outbox (both rows, one statement, stamped enqueued)",
        "COMMIT",
    ],
    "verify": [
        "BEGIN",
        "SELECT signup_pendingsignup by token hash (the signup whose token came back)",
        "INSERT signup_addresscounter ON CONFLICT DO UPDATE (reserve: the wrong-code count)",
        "SELECT signup_verificationcode JOIN signup_user by Lower(email) FOR UPDATE",
        "UPDATE signup_addresscounter SET failures - 1 (a right code: given back)",
        "UPDATE signup_verificationcode SET used_at",
        "UPDATE signup_user SET email_verified_at, password (that signup's)",
        "UPDATE signup_profile SET full_name (that signup's)",
        "DELETE signup_pendingsignup (every signup of the account)",
        "COMMIT",
    ],
    # Then one enqueue of signup.tasks.resend_code: the worker looks the
    # account up and writes the outbox row (the same request for any address).
    "resend": [
        "BEGIN",
        "INSERT signup_addresslimit ON CONFLICT DO UPDATE (create or lock)",
        "UPDATE signup_addresslimit",
        "UPDATE signup_addresscounter SET failures = 0 (the wrong-code count restarts)",
        "COMMIT",
    ],
}

pytestmark = pytest.mark.django_db(transaction=True)


def signup_body(password_hash: str) -> dict:
    return {"email": fresh_email(), "password": PASSWORD, "full_name": "Bench User"}


def verify_body(password_hash: str) -> dict:
    return verify_request(password_hash=password_hash)


def resend_body(password_hash: str) -> dict:
    return {"email": unverified_user(password_hash=password_hash).email}


REQUESTS = {
    "signup": ("/api/v1/signup", signup_body, 202),
    "verify": ("/api/v1/signup/verify", verify_body, 200),
    "resend": ("/api/v1/signup/resend", resend_body, 202),
}


def listing(queries: list[dict]) -> str:
    """Numbered statements; a run of one shape (an N+1) is folded into one line."""
    runs: list[list] = []  # [first number, last number, shape, first sql]
    for n, query in enumerate(queries, 1):
        shape = sql_shape(query["sql"])
        if runs and runs[-1][2] == shape:
            runs[-1][1] = n
        else:
            runs.append([n, n, shape, query["sql"]])
    lines = []
    for first, last, _, sql in runs:
        number = f"{first:2}." if first == last else f"{first}-{last}. ({last - first + 1}x)"
        lines.append(f"  {number} {sql[:300]}")
    return "\n".join(lines)


@pytest.mark.parametrize("existing", [0, 1, 500], ids=lambda n: f"{n}-users-and-admins")
@pytest.mark.parametrize("endpoint", list(REQUESTS))
def test_query_count(endpoint, existing, api, password_hash, rows):
    population(users=existing, admins=existing, password_hash=password_hash)
    path, make_body, status = REQUESTS[endpoint]
    body = make_body(password_hash)

    with CaptureQueriesContext(connection) as captured:
        response = api.post_json(path, body)

    assert response.status_code == status, response.content
    queries = captured.captured_queries
    expected = EXPECTED[endpoint]
    rows.append(
        Row(
            name=f"POST {path} [{existing} users+admins]",
            group="query count",
            queries=str(len(queries)),
            gate="pass" if len(queries) == len(expected) else "FAIL",
        )
    )
    assert len(queries) == len(expected), (
        f"POST {path} ran {len(queries)} statements, the gate allows {len(expected)} "
        f"(with {existing} users and {existing} admins).\n"
        f"Ran:\n{listing(queries)}\n"
        "Expected:\n" + "\n".join(f"  {n:2}. {q}" for n, q in enumerate(expected, 1))
    )
