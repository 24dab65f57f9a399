"""Every documented error has {"detail", "code"} with its stable code (issue 12,
point 4; the Errors table of docs/api.md), and the OpenAPI document states the
password rules with real examples."""

import json

import pytest
from django.db import OperationalError

import signup.api.signup
from signup.tests.conftest import PASSWORD, RESEND, SIGNUP, VERIFY, make_user, verify_body

pytestmark = pytest.mark.django_db

GOOD = {"email": "ada@example.com", "password": PASSWORD}


@pytest.fixture(autouse=True)
def _no_ip_limit(settings):
    settings.RATE_LIMIT_PER_IP = "off"


def post(client, path, body, content_type="application/json", **extra):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(path, data, content_type=content_type, **extra)


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"detail", "code"}, body
    assert body["code"] == code
    assert body["detail"]
    return body


def test_invalid_json(client):
    assert_error(post(client, SIGNUP, b"{bad"), 400, "invalid_json")
    assert_error(post(client, SIGNUP, b""), 400, "invalid_json")


def test_invalid_code(client):
    assert_error(post(client, VERIFY, verify_body("a@example.com", "1")), 400, "invalid_code")


def test_body_too_large(client):
    assert_error(post(client, SIGNUP, "x" * 70_000), 413, "body_too_large")


def test_unsupported_media_type(client):
    response = post(client, SIGNUP, "email=a", content_type="application/x-www-form-urlencoded")
    assert_error(response, 415, "unsupported_media_type")


def test_validation_error_has_loc_without_payload(client):
    body = assert_error(post(client, SIGNUP, {"email": "nope"}), 422, "validation_error")
    assert {tuple(e["loc"]) for e in body["detail"]} == {("body", "email"), ("body", "password")}


@pytest.mark.parametrize(
    ("password", "extra", "code"),
    [
        ("k9#mQ2!z", {}, "password_too_short"),
        ("password123", {}, "password_too_common"),
        ("83920174652", {}, "password_entirely_numeric"),
        ("lovelace.ada", {"email": "lovelace.ada@example.com"}, "password_too_similar"),
        ("augustabyronking", {"full_name": "Augusta Byron King"}, "password_too_similar"),
    ],
)
def test_a_refused_password_has_the_validator_code_as_its_type(client, password, extra, code):
    body = {**GOOD, "password": password, **extra}
    (error,) = assert_error(post(client, SIGNUP, body), 422, "validation_error")["detail"]
    assert error["loc"] == ["body", "password"]
    assert error["type"] == code


def test_idempotency_key_invalid_and_reused(client):
    bad = post(client, SIGNUP, GOOD, HTTP_IDEMPOTENCY_KEY="")
    assert_error(bad, 422, "idempotency_key_invalid")
    post(client, SIGNUP, GOOD, HTTP_IDEMPOTENCY_KEY="k1")
    reused = post(client, SIGNUP, {**GOOD, "full_name": "X"}, HTTP_IDEMPOTENCY_KEY="k1")
    assert_error(reused, 422, "idempotency_key_reused")


def test_rate_limited_per_ip(client, settings):
    settings.RATE_LIMIT_PER_IP = "1/m"
    post(client, RESEND, {"email": "a@example.com"})
    response = post(client, RESEND, {"email": "b@example.com"})
    assert_error(response, 429, "rate_limited")
    assert int(response["Retry-After"]) > 0


def test_rate_limited_per_address(client):
    post(client, RESEND, {"email": "a@example.com"})
    response = post(client, RESEND, {"email": "a@example.com"})
    assert_error(response, 429, "rate_limited")
    assert int(response["Retry-After"]) > 0


def test_too_many_attempts(client):
    make_user("a@example.com")
    for _ in range(5):
        post(client, VERIFY, verify_body("a@example.com", "000000"))
    response = post(client, VERIFY, verify_body("a@example.com", "000000"))
    assert_error(response, 429, "too_many_attempts")
    assert response["Retry-After"]


def test_service_unavailable(client, monkeypatch):
    def down(**kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(signup.api.signup, "user_signup", down)
    response = post(client, SIGNUP, GOOD)
    assert_error(response, 503, "service_unavailable")
    assert response["Retry-After"] == "5"


# --- the OpenAPI document ---------------------------------------------------


@pytest.fixture
def schema(client):
    return client.get("/api/v1/openapi.json").json()


def test_the_password_rules_are_in_the_schema(schema):
    password = schema["components"]["schemas"]["SignupIn"]["properties"]["password"]

    assert (password["minLength"], password["maxLength"]) == (10, 4096)
    for rule in ("10 to 4096", "common", "digits", "similar", "password_too_short"):
        assert rule in password["description"]


def test_every_field_has_a_real_example(schema):
    """No "string" placeholders: each property of a body has an example (or a
    fixed value), so the docs and generated clients show real requests."""
    missing = [
        f"{name}.{prop}"
        for name, model in schema["components"]["schemas"].items()
        for prop, spec in model.get("properties", {}).items()
        if not ({"examples", "const", "enum"} & set(spec))
    ]
    assert missing == []


def test_every_error_answer_has_an_example_with_its_code(schema):
    for path in ("/api/v1/signup", "/api/v1/signup/verify", "/api/v1/signup/resend"):
        responses = schema["paths"][path]["post"]["responses"]
        for status in ("400", "413", "415", "422", "429", "503"):
            examples = responses[status]["content"]["application/json"]["examples"]
            assert all(e["value"]["code"] for e in examples.values()), (path, status)


def test_the_description_points_at_the_api_guide_in_the_repo(schema):
    from conftest import ROOT

    assert "docs/api.md" in schema["info"]["description"]
    assert (ROOT / "docs" / "api.md").is_file()
