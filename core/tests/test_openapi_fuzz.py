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
from schemathesis.core.parameters import ParameterLocation
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
# Accounts after signup (issue 9); the authenticated ones get a valid token.
AUTH_POSTS = {
    "/api/v1/auth/login",
    "/api/v1/auth/code",
    "/api/v1/auth/code/verify",
    "/api/v1/auth/password/reset",
    "/api/v1/auth/password/reset/confirm",
    "/api/v1/auth/mfa",
}
AUTHED = {
    "POST /api/v1/auth/logout",
    "GET /api/v1/me",
    "PATCH /api/v1/me",
    "GET /api/v1/me/wallet",
    "GET /api/v1/me/notifications",
    "POST /api/v1/me/notifications/read-all",
    "POST /api/v1/me/notifications/{notification_id}/read",
    "POST /api/v1/me/password",
    "POST /api/v1/me/email",
    "POST /api/v1/me/email/confirm",
    "GET /api/v1/me/sessions",
    "DELETE /api/v1/me/sessions/{session_id}",
    "DELETE /api/v1/me",
    "GET /api/v1/me/export",
    "GET /api/v1/me/mfa",
    "POST /api/v1/me/mfa/totp",
    "POST /api/v1/me/mfa/totp/confirm",
    "DELETE /api/v1/me/mfa/totp",
    "POST /api/v1/me/mfa/recovery-codes",
}
OPERATIONS = (
    {f"GET {path}" for path in HEALTH} | {f"POST {path}" for path in POSTS | AUTH_POSTS} | AUTHED
)
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
# Answers other than 401 per operation: the authenticated ones must have been
# reached with a valid token, not only refused.
ADMITTED: Counter[str] = Counter()

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
def fresh_token() -> str:
    """A new token of a verified user with a few notifications (one read).

    The user is made by the first case of an operation and kept by the rest
    (one test transaction); every case gets its own token, because a logout
    case revokes the one it used.
    """
    from django.utils import timezone

    from messaging.models import Notification
    from signup.models import User
    from signup.tokens import token_issue

    user = User.objects.filter(email="fuzz@example.com").first()
    if user is None:
        user = User.objects.create_user("fuzz@example.com", email_verified_at=timezone.now())
        Notification.objects.bulk_create(
            [
                Notification(user=user, kind="welcome", title=f"n{i}", dedupe_key=f"n{i}")
                for i in range(3)
            ]
        )
        Notification.objects.filter(dedupe_key="n0").update(read_at=timezone.now())
    return token_issue(user=user)[0]


@schema.parametrize()
@pytest.mark.usefixtures("wsgi_in_test_transaction")
def test_every_answer_is_documented_and_never_a_5xx(case):
    CASES_RUN[case.operation.label] += 1
    headers = None
    # A valid token, unless the case means to send a bad or missing one.
    header_is_negative = case.meta is not None and case.meta.is_negative_at(
        ParameterLocation.HEADER
    )
    if case.operation.label in AUTHED and not header_is_negative:
        headers = {"Authorization": f"Bearer {fresh_token()}"}
    response = case.call_and_validate(checks=CHECKS, headers=headers)
    if response.status_code != 401:
        ADMITTED[case.operation.label] += 1

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
    assert {label for label in AUTHED if ADMITTED[label] == 0} == set()


# --- the document itself ------------------------------------------------------


def test_openapi_document_is_served_with_every_path(client):
    response = client.get(OPENAPI)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    paths = response.json()["paths"]
    assert set(paths) == {*HEALTH, *POSTS, *AUTH_POSTS} | {label.split()[1] for label in AUTHED}
    assert {f"{method.upper()} {path}" for path in paths for method in paths[path]} == OPERATIONS


def test_openapi_documents_every_answer_and_the_idempotency_key(client):
    paths = client.get(OPENAPI).json()["paths"]
    errors = {"400", "413", "415", "422", "429", "503"}

    assert set(paths["/api/v1/health"]["get"]["responses"]) == {"200", "503"}
    assert set(paths["/api/v1/signup"]["post"]["responses"]) == {"202", *errors}
    assert set(paths["/api/v1/signup/verify"]["post"]["responses"]) == {"200", *errors}
    assert set(paths["/api/v1/signup/resend"]["post"]["responses"]) == {"202", *errors}
    for path in POSTS:
        for status in ("429", "503"):
            assert paths[path]["post"]["responses"][status]["headers"]["Retry-After"]["required"]
    (key,) = paths["/api/v1/signup"]["post"]["parameters"]
    assert (key["in"], key["name"], key["required"]) == ("header", "Idempotency-Key", False)


def test_openapi_documents_every_answer_of_the_accounts_endpoints(client):
    document = client.get(OPENAPI).json()
    paths = document["paths"]
    errors = {"400", "413", "415", "422", "429", "503"}

    def answers(label):
        method, path = label.split()
        return set(paths[path][method.lower()]["responses"])

    assert answers("POST /api/v1/auth/login") == {"200", "403", *errors}
    assert answers("POST /api/v1/auth/code") == {"202", *errors}
    assert answers("POST /api/v1/auth/code/verify") == {"200", *errors}
    assert answers("POST /api/v1/auth/password/reset") == {"202", *errors}
    assert answers("POST /api/v1/auth/password/reset/confirm") == {"200", *errors}
    body = {"400", "413", "415", "422"}
    assert answers("POST /api/v1/auth/logout") == {"204", "401", "503", *body}
    assert answers("POST /api/v1/me/password") == {"204", "401", "429", "503", *body}
    assert answers("GET /api/v1/me/sessions") == {"200", "401", "503"}
    assert answers("POST /api/v1/me/email") == {"202", "401", "429", "503", *body}
    assert answers("POST /api/v1/me/email/confirm") == {"200", "401", "429", "503", *body}
    assert answers("GET /api/v1/me/export") == {"200", "401", "429", "503"}
    assert answers("DELETE /api/v1/me/sessions/{session_id}") == {
        "204",
        "401",
        "404",
        "422",
        "503",
    }
    assert answers("GET /api/v1/me") == {"200", "401", "503"}
    assert answers("DELETE /api/v1/me") == {"204", "401", "409", "429", "503", *body}
    assert answers("PATCH /api/v1/me") == {"200", "400", "401", "413", "415", "422", "503"}
    assert answers("GET /api/v1/me/wallet") == {"200", "401", "503"}
    assert answers("GET /api/v1/me/notifications") == {"200", "401", "422", "503"}
    assert answers("POST /api/v1/me/notifications/read-all") == {"204", "401", "503"}
    assert answers("POST /api/v1/me/notifications/{notification_id}/read") == {
        "204",
        "401",
        "404",
        "422",
        "503",
    }
    for label in AUTHED:
        method, path = label.split()
        operation = paths[path][method.lower()]
        assert operation["security"], label
        assert operation["responses"]["401"]["headers"]["WWW-Authenticate"]["required"]
    (scheme,) = document["components"]["securitySchemes"].values()
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")


def test_interactive_docs_are_served(client):
    response = client.get("/api/v1/docs")

    assert response.status_code == 200
    assert b"/api/v1/openapi.json" in response.content


def test_optional_request_fields_are_optional_for_code_generators(client):
    """openapi-typescript (and others) make a property with a "default"
    required in the type they write, so `{email, password}` failed to type-check
    against SignupIn: an optional request field is simply not required."""
    document = client.get(OPENAPI).json()
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            content = operation.get("requestBody", {}).get("content", {})
            for media in content.values():
                refs = [media["schema"], *media["schema"].get("anyOf", [])]  # optional bodies
                ref = next(r["$ref"] for r in refs if "$ref" in r).rsplit("/", 1)[-1]
                schema = document["components"]["schemas"][ref]
                with_default = [
                    name for name, prop in schema["properties"].items() if "default" in prop
                ]
                assert with_default == [], f"{method.upper()} {path}: {ref} {with_default}"
    signup = document["components"]["schemas"]["SignupIn"]
    assert "full_name" in signup["properties"]
    assert "full_name" not in signup["required"]
