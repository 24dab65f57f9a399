"""Schemathesis against /api/v1/openapi.json: the document is the contract.

Every operation gets positive and negative cases (schemathesis's examples,
coverage and fuzzing phases), sent in-process to the WSGI application with
the production settings: PostgreSQL, Redis, the Argon2id hasher. No answer
may be a 5xx, each one's status code, content type, headers and body must be
ones the document declares for that operation, and a request the document
calls invalid must get a 4xx (its constraints are the server's).
"""

from collections import Counter

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from core.wsgi import application

pytestmark = pytest.mark.django_db

OPENAPI = "/api/v1/openapi.json"
POSTS = {"/api/v1/signup", "/api/v1/signup/verify", "/api/v1/signup/resend"}
HEALTH = {"/api/v1/health", "/api/v1/health/live", "/api/v1/health/ready"}
OPERATIONS = {f"GET {path}" for path in HEALTH} | {f"POST {path}" for path in POSTS}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
# Fuzzing examples per operation. The examples and coverage phases add ~40
# more to each POST; health has no inputs, so it gets only a few. ~1,300 in all.
EXAMPLES_PER_OPERATION = 400
MIN_CASES = 1000

# Cases run per operation ("POST /api/v1/signup"), for the total check below.
CASES_RUN: Counter[str] = Counter()

schema = schemathesis.openapi.from_wsgi(OPENAPI, application)


@pytest.fixture
def wsgi_in_test_transaction(settings):
    """Lets the deployed WSGI application run inside the test's transaction.

    Django runs close_old_connections at the start and end of each request,
    which would close the connection holding the test's transaction; its
    test client detaches it around a request, and so does this, for the test.
    The per-IP limit is off (every case comes from one address); the
    per-address limits stay on, and their 429s are documented answers.
    """
    settings.RATE_LIMIT_PER_IP = "off"
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


# deadline: a signup hashes with Argon2id (~25 ms) against a real database,
# so one case's time varies; the suite's time is bounded by max_examples.
# too_slow, filter_too_much: generation health, not the service's; they
# would only make the run flaky. database=None as in the other property tests.
@hypothesis_settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@schema.parametrize()
@pytest.mark.usefixtures("wsgi_in_test_transaction")
def test_every_answer_is_documented_and_never_a_5xx(case):
    CASES_RUN[case.operation.label] += 1
    response = case.call_and_validate(checks=CHECKS)

    # 503 is documented (database or broker down), but both are up here: one
    # would mean the test's own connection was lost, hiding every other answer.
    assert response.status_code != 503, response.text


def test_fuzzing_ran_at_least_1000_cases(record_property):
    """Runs after the fuzzing above (pytest keeps a module's order); records its size."""
    if set(CASES_RUN) != OPERATIONS:
        pytest.skip("the fuzzing did not run every operation (deselected, or it failed)")
    total = sum(CASES_RUN.values())
    record_property("schemathesis_cases", total)
    print(f"schemathesis: {total} cases: {dict(sorted(CASES_RUN.items()))}")  # -rA shows it

    assert total >= MIN_CASES


# --- the document itself ------------------------------------------------------


def test_openapi_document_is_served_with_its_paths(client):
    response = client.get(OPENAPI)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    paths = response.json()["paths"]
    assert set(paths) == {*HEALTH, *POSTS}
    assert {f"{method.upper()} {path}" for path in paths for method in paths[path]} == OPERATIONS


def test_openapi_documents_every_answer_and_the_idempotency_key(client):
    paths = client.get(OPENAPI).json()["paths"]
    errors = {"400", "413", "422", "429", "503"}

    assert set(paths["/api/v1/health"]["get"]["responses"]) == {"200", "503"}
    assert set(paths["/api/v1/signup"]["post"]["responses"]) == {"202", *errors}
    assert set(paths["/api/v1/signup/verify"]["post"]["responses"]) == {"200", *errors}
    assert set(paths["/api/v1/signup/resend"]["post"]["responses"]) == {"202", *errors}
    for path in POSTS:
        for status in ("429", "503"):
            assert paths[path]["post"]["responses"][status]["headers"]["Retry-After"]["required"]
    (key,) = paths["/api/v1/signup"]["post"]["parameters"]
    assert (key["in"], key["name"], key["required"]) == ("header", "Idempotency-Key", False)


def test_interactive_docs_are_served(client):
    response = client.get("/api/v1/docs")

    assert response.status_code == 200
    assert b"/api/v1/openapi.json" in response.content
