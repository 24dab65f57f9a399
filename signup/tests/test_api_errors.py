"""Bad input on the three signup endpoints: 400, 413 and 422 with the documented
shapes, never a 5xx, and never a partial write."""

import json

import pytest
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from signup.models import User
from signup.tests.conftest import (
    PASSWORD,
    RESEND,
    SIGNUP,
    VERIFY,
    error_detail_is_list_of_field_errors,
    is_plain_detail,
    make_user,
    row_counts,
)

pytestmark = pytest.mark.django_db

ENDPOINTS = [SIGNUP, VERIFY, RESEND]
VALID = {
    SIGNUP: {"email": "ada@example.com", "password": PASSWORD, "full_name": "Ada Lovelace"},
    VERIFY: {"email": "ada@example.com", "code": "042917"},
    RESEND: {"email": "ada@example.com"},
}


def long_email(length: int) -> str:
    """A syntactically valid address of the given length (local part 64, labels <= 63)."""
    return "a" * 64 + "@" + "b" * 63 + "." + "b" * 63 + "." + "c" * (length - 65 - 128)


NOT_JSON = {
    "detail": "Request body is not valid JSON. Send a JSON object with "
    "Content-Type: application/json.",
    "code": "invalid_json",
}


@pytest.fixture
def nothing_written():
    """Assert after the test that no row of any signup table was written."""
    before = row_counts()
    yield
    assert row_counts() == before


def post_raw(api, path, body: bytes | str):
    return api.post(path, body, content_type="application/json")


def field_errors(response) -> dict[str, str]:
    """{field name: error type} from a 422 body (loc is ["body", field])."""
    assert response.status_code == 422, response.content
    body = response.json()
    assert error_detail_is_list_of_field_errors(body), body
    return {item["loc"][-1]: item["type"] for item in body["detail"]}


# --- 400: not JSON -----------------------------------------------------------


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(
    "body",
    [b"{bad", b'{"email": "ada@example.com"', b"{'email': 'a'}", b"\xff\xfe\x00", b"NaN]"],
    ids=["garbage", "truncated", "single-quotes", "not-utf8", "bare-word"],
)
def test_malformed_json_is_400_with_a_detail_string(api, path, body, nothing_written):
    response = post_raw(api, path, body)

    assert response.status_code == 400
    assert response.json() == NOT_JSON
    assert is_plain_detail(response)


@pytest.mark.parametrize("path", ENDPOINTS)
def test_a_form_post_is_415(api, path, nothing_written):
    response = api.post(path, {"email": "ada@example.com", "password": PASSWORD})

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


@pytest.mark.parametrize("path", ENDPOINTS)
def test_empty_body_is_400(api, path):
    response = post_raw(api, path, b"")

    assert response.status_code == 400
    assert is_plain_detail(response)


@pytest.mark.parametrize("path", ENDPOINTS)
def test_empty_body_is_a_documented_4xx_and_writes_nothing(api, path, nothing_written):
    """The 400 for an empty body has the documented shape and writes nothing."""
    response = post_raw(api, path, b"")

    assert response.status_code == 400
    assert is_plain_detail(response)


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("body", ["[]", "null", '"ada@example.com"', "42", "true", "[{}]"])
def test_json_that_is_not_an_object_is_422(api, path, body, nothing_written):
    errors = field_errors(post_raw(api, path, body))

    assert errors["email"] == "missing"


# --- 413 ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ENDPOINTS)
def test_body_over_64_kib_is_413(api, path, nothing_written):
    body = json.dumps({**VALID[path], "padding": "x" * 64 * 1024})

    response = post_raw(api, path, body)

    assert response.status_code == 413
    assert is_plain_detail(response)


def test_body_of_exactly_64_kib_is_accepted(api):
    body = json.dumps({**VALID[SIGNUP], "padding": ""})
    body = body[:-2] + "x" * (64 * 1024 - len(body)) + body[-2:]
    assert len(body.encode()) == 64 * 1024

    assert post_raw(api, SIGNUP, body).status_code == 202


def test_longest_valid_fields_fit_in_the_body_limit_even_escaped(api):
    """4096 non-BMP characters escaped as surrogate pairs are ~48 KiB: under 64 KiB."""
    email = long_email(254)
    body = json.dumps(
        {"email": email, "password": "\U0001f511" * 4095 + "!", "full_name": "\u00e9" * 150},
        ensure_ascii=True,
    )

    response = post_raw(api, SIGNUP, body)

    assert response.status_code == 202, response.content
    assert User.objects.get().email == email


# --- 422: each field wrong ---------------------------------------------------


def signup_with(**changes):
    body = dict(VALID[SIGNUP])
    for key, value in changes.items():
        if value is ...:
            del body[key]
        else:
            body[key] = value
    return body


SIGNUP_BAD = {
    "email-missing": (signup_with(email=...), "email", "missing"),
    "email-null": (signup_with(email=None), "email", "string_type"),
    "email-number": (signup_with(email=42), "email", "string_type"),
    "email-list": (signup_with(email=["ada@example.com"]), "email", "string_type"),
    "email-empty": (signup_with(email=""), "email", "email_invalid"),
    "email-no-at": (signup_with(email="ada.example.com"), "email", "email_invalid"),
    "email-no-domain": (signup_with(email="ada@"), "email", "email_invalid"),
    "email-no-tld": (signup_with(email="ada@localhost"), "email", "email_invalid"),
    "email-spaces": (signup_with(email="ada lovelace@example.com"), "email", "email_invalid"),
    "email-two-ats": (signup_with(email="ada@@example.com"), "email", "email_invalid"),
    "email-nul": (signup_with(email="ada\x00@example.com"), "email", "email_invalid"),
    "email-255": (signup_with(email=long_email(255)), "email", "string_too_long"),
    "password-missing": (signup_with(password=...), "password", "missing"),
    "password-null": (signup_with(password=None), "password", "string_type"),
    "password-number": (signup_with(password=12345678901234), "password", "string_type"),
    "password-empty": (signup_with(password=""), "password", "string_too_short"),
    "password-4097": (signup_with(password="x7#" * 1365 + "ab"), "password", "string_too_long"),
    "password-too-short": (signup_with(password="k9#mQ2!z"), "password", "password_too_short"),
    "password-common": (signup_with(password="password123"), "password", "password_too_common"),
    "password-numeric": (
        signup_with(password="83920174652"),
        "password",
        "password_entirely_numeric",
    ),
    "password-like-email": (
        signup_with(email="lovelace.ada@example.com", password="lovelace.ada"),
        "password",
        "password_too_similar",
    ),
    "password-like-name": (
        signup_with(full_name="Augusta Byron King", password="augustabyronking"),
        "password",
        "password_too_similar",
    ),
    "password-lone-surrogate": (
        signup_with(password="abcdefghij\ud800k"),
        "password",
        "string_unicode",
    ),
    "full_name-151": (signup_with(full_name="n" * 151), "full_name", "string_too_long"),
    "full_name-number": (signup_with(full_name=7), "full_name", "string_type"),
    "full_name-null": (signup_with(full_name=None), "full_name", "string_type"),
    "full_name-nul": (signup_with(full_name="Ada\x00Lovelace"), "full_name", "null_character"),
    "full_name-surrogate": (
        signup_with(full_name="Ada\udfffLovelace"),
        "full_name",
        "string_unicode",
    ),
}


@pytest.mark.parametrize(("body", "field", "error_type"), SIGNUP_BAD.values(), ids=SIGNUP_BAD)
def test_signup_bad_field_is_422_naming_the_field(api, body, field, error_type, nothing_written):
    errors = field_errors(api.post_json(SIGNUP, body))

    assert errors.get(field) == error_type


def test_signup_boundaries_are_accepted(api):
    """The limits in docs/api.md are inclusive: 254, 4096 and 150 characters pass."""
    email = long_email(254)
    password = "x7#" * 1365 + "a"
    assert (len(email), len(password)) == (254, 4096)

    response = api.post_json(SIGNUP, {"email": email, "password": password, "full_name": "n" * 150})

    assert response.status_code == 202, response.content
    user = User.objects.get()
    assert user.check_password(password)
    assert user.profile.full_name == "n" * 150


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("password-too-short", "at least 10 characters"),
        ("password-common", "too common"),
        ("password-numeric", "entirely numeric"),
        ("password-like-email", "too similar to the email"),
        ("password-like-name", "too similar to the full name"),
    ],
)
def test_password_policy_message_says_which_rule_failed(api, case, fragment):
    body, _, _ = SIGNUP_BAD[case]

    detail = api.post_json(SIGNUP, body).json()["detail"]

    (item,) = detail
    assert item["loc"] == ["body", "password"]
    assert item["msg"].startswith("Choose a stronger password: ")
    assert fragment in item["msg"]


def test_several_bad_fields_are_all_reported(api, nothing_written):
    errors = field_errors(api.post_json(SIGNUP, {"email": "nope", "full_name": "n" * 151}))

    assert set(errors) == {"email", "password", "full_name"}


def test_bad_input_for_a_taken_address_writes_nothing_either(api):
    user = make_user("ada@example.com")
    before = row_counts()

    response = api.post_json(SIGNUP, signup_with(password="short"))

    assert response.status_code == 422
    assert row_counts() == before
    assert user.codes.count() == 0


VERIFY_BAD = {
    "email-missing": ({"code": "042917"}, "email", "missing"),
    "email-invalid": ({"email": "ada", "code": "042917"}, "email", "email_invalid"),
    "email-number": ({"email": 1, "code": "042917"}, "email", "string_type"),
    "email-255": ({"email": long_email(255), "code": "1"}, "email", "string_too_long"),
    "code-missing": ({"email": "ada@example.com"}, "code", "missing"),
    "code-empty": ({"email": "ada@example.com", "code": ""}, "code", "string_too_short"),
    "code-number": ({"email": "ada@example.com", "code": 42917}, "code", "string_type"),
    "code-null": ({"email": "ada@example.com", "code": None}, "code", "string_type"),
    "code-33": ({"email": "ada@example.com", "code": "1" * 33}, "code", "string_too_long"),
}


@pytest.mark.parametrize(("body", "field", "error_type"), VERIFY_BAD.values(), ids=VERIFY_BAD)
def test_verify_bad_field_is_422(api, body, field, error_type, nothing_written):
    errors = field_errors(api.post_json(VERIFY, body))

    assert errors.get(field) == error_type


RESEND_BAD = {
    "email-missing": ({}, "email", "missing"),
    "email-invalid": ({"email": "ada@"}, "email", "email_invalid"),
    "email-number": ({"email": 5}, "email", "string_type"),
    "email-255": ({"email": long_email(255)}, "email", "string_too_long"),
}


@pytest.mark.parametrize(("body", "field", "error_type"), RESEND_BAD.values(), ids=RESEND_BAD)
def test_resend_bad_field_is_422(api, body, field, error_type, nothing_written):
    errors = field_errors(api.post_json(RESEND, body))

    assert errors.get(field) == error_type


# --- no input produces a 5xx --------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)
FIELD_VALUES = st.text() | st.text(alphabet="\x00\ud800\udfff\u202e\ufeff a@.1", max_size=30)
FIELD_VALUES = FIELD_VALUES | st.emails() | JSON_VALUES


@hypothesis_settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    path=st.sampled_from(ENDPOINTS),
    body=st.fixed_dictionaries(
        {},
        optional={
            "email": FIELD_VALUES,
            "password": FIELD_VALUES,
            "full_name": FIELD_VALUES,
            "code": FIELD_VALUES,
        },
    )
    | JSON_VALUES,
)
def test_no_json_input_produces_a_5xx(path, body):
    client = Client(raise_request_exception=False)

    response = client.post(path, json.dumps(body), content_type="application/json")

    assert response.status_code < 500, (path, body, response.content)
    if response.status_code == 422:
        assert error_detail_is_list_of_field_errors(response.json())
    elif response.status_code in (400, 413, 429):
        assert is_plain_detail(response)
    else:
        assert response.status_code in (200, 202)
