"""What every router's schemas share: the address, the code, the password
policy, the one error body, and the OpenAPI pieces of the error answers.

Bad input is a 422 with the failing field in loc and a message a person can
act on: email syntax from email-validator, password policy from Django's
AUTH_PASSWORD_VALIDATORS (with the email and name for the similarity check).
"""

from types import SimpleNamespace
from typing import ClassVar

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from email_validator import EmailNotValidError, validate_email
from ninja import Field, Schema
from pydantic import ConfigDict, field_validator, model_validator
from pydantic_core import PydanticCustomError

from core.bodies import NOT_JSON, NOT_JSON_TYPE, TOO_LARGE
from core.errors import ApiError


class _Applicant(SimpleNamespace):
    """The would-be user, as UserAttributeSimilarityValidator reads it.

    The validator names the similar attribute through user._meta.get_field;
    a bare namespace has no _meta, so a password like the email was a 500.
    """

    _meta = SimpleNamespace(
        get_field=lambda name: SimpleNamespace(verbose_name=name.replace("_", " "))
    )


def normalize_email(value: str) -> str:
    """Syntax-checked address with the domain lower-cased (no DNS lookups)."""
    if len(value) > 254:
        raise PydanticCustomError("email_too_long", "Email address must be at most 254 characters.")
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise PydanticCustomError(
            "email_invalid", "Enter a valid email address: {reason}", {"reason": str(exc)}
        ) from None
    return result.normalized


class EmailIn(Schema):
    # idn-email: internationalized addresses are accepted (email-validator, SMTPUTF8).
    email: str = Field(
        ..., max_length=254, examples=["ada@example.com"], json_schema_extra={"format": "idn-email"}
    )

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return normalize_email(value)


class CodeIn(EmailIn):
    """An address and the 6-digit code emailed to it (login code, reset)."""

    code: str = Field(
        ...,
        min_length=1,
        max_length=32,
        examples=["042917"],
        description="The 6-digit code from the email.",
    )


POLICY_TEXT = (
    "10 to 4096 characters; not a commonly used password; not entirely digits; "
    "not too similar to the email address or the full name. A refused password "
    "is a 422 whose error type is Django's validator code: password_too_short, "
    "password_too_common, password_entirely_numeric or password_too_similar."
)


def password_validated(value: str, *, user: "_Applicant") -> str:
    """value if Django's password validators accept it, else a 422 field error.

    Django's validator code is the error type (docs/api.md): the first rule
    that failed; the message names every one.
    """
    try:
        validate_password(value, user=user)
    except DjangoValidationError as exc:
        code = exc.error_list[0].code or "password_invalid"
        raise PydanticCustomError(
            code, "Choose a stronger password: {reason}", {"reason": " ".join(exc.messages)}
        ) from None
    return value


class ObjectBody(Schema):
    """A body whose fields are all optional must still be a JSON object.

    Ninja hands a model validator its DjangoGetter: a JSON array read
    through attributes would pass as an object of defaults (an empty patch,
    a logout of scope current).
    """

    object_hint: ClassVar[str] = "Send a JSON object, as the docs show."

    @model_validator(mode="before")
    @classmethod
    def _object(cls, value):
        if not isinstance(getattr(value, "_obj", value), dict):
            raise PydanticCustomError("model_type", cls.object_hint)
        return value


def password_policy_check(value: str, *, user, field: str) -> None:
    """Django's validators on a signed-in user's new password (the similarity
    check needs the account, which a body schema does not have): a 422 in the
    one field-error shape, with the validator's code as its type."""
    try:
        password_validated(value, user=user)
    except PydanticCustomError as exc:
        error = {"type": exc.type, "loc": ["body", field], "msg": exc.message()}
        raise ApiError(422, "validation_error", [error]) from None


def full_name_checked(value: str) -> str:
    """PostgreSQL text cannot hold NUL: a 422 here, not a DataError (500) later."""
    if "\x00" in value:
        raise PydanticCustomError(
            "null_character", "Full name may not contain null (\\x00) characters."
        )
    return value


def optional(schema: dict) -> None:
    """No "default" in the OpenAPI document: generators (openapi-typescript)
    make a property with a default required in the type they write."""
    schema.pop("default", None)


class ErrorOut(Schema):
    """{"detail": for people, "code": for programs (docs/api.md, Errors)}."""

    detail: str = Field(..., examples=["Invalid or expired code."])
    code: str = Field(..., examples=["invalid_code"])


class FieldError(Schema):
    """One failing field; pydantic's errors may carry more keys (such as ctx)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(..., examples=["password_too_short"])
    loc: list[str | int] = Field(..., examples=[["body", "password"]])
    msg: str = Field(
        ...,
        examples=[
            "Choose a stronger password: This password is too short. "
            "It must contain at least 10 characters."
        ],
    )


class FieldErrorsOut(Schema):
    detail: list[FieldError] = Field(
        ...,
        examples=[
            [
                {
                    "type": "password_too_common",
                    "loc": ["body", "password"],
                    "msg": "Choose a stronger password: This password is too common.",
                }
            ]
        ],
    )
    code: str = Field(..., examples=["validation_error"])


# The error answers every POST endpoint can give (docs/api.md, Errors), from
# core.api's handlers: not JSON, too large, not application/json, a bad
# field, a rate limit, and the database unavailable. Each route adds its own
# answers to these.
ERROR_RESPONSES = {
    400: ErrorOut,
    413: ErrorOut,
    415: ErrorOut,
    422: FieldErrorsOut,
    429: ErrorOut,
    503: ErrorOut,
}


# The answers of every authenticated endpoint besides its own.
AUTHED_ERRORS = {401: ErrorOut, 503: ErrorOut}
# A body-taking authenticated request's own errors (besides AUTHED_ERRORS).
BODY_ERRORS = {400: ErrorOut, 413: ErrorOut, 415: ErrorOut, 422: FieldErrorsOut}

# --- OpenAPI only: examples and headers the response models cannot say ------------

# 429 and 503 always carry Retry-After (core.api, ninja's throttle, the limits).
# OpenAPI only: what ERROR_RESPONSES cannot say. 429 and 503 always carry
# Retry-After (core.api, ninja's throttle check, the limits below).
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before asking again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    }
}


def error_examples(**cases: tuple[str, object]) -> dict:
    """OpenAPI examples of one status's error bodies: {name: (code, detail)}."""
    values = {name: {"value": {"detail": d, "code": c}} for name, (c, d) in cases.items()}
    return {"content": {"application/json": {"examples": values}}}


THROTTLED = ("rate_limited", "Too many requests from your network. Try again in 42 seconds.")


FIELD_ERROR = {
    "type": "string_too_long",
    "loc": ["body", "email"],
    "msg": "String should have at most 254 characters",
}


def error_docs(**per_status: dict) -> dict:
    """Every error answer's example (docs/api.md, Errors); per_status: s<status>=examples."""
    responses = {
        400: error_examples(invalid_json=("invalid_json", NOT_JSON)),
        413: error_examples(body_too_large=("body_too_large", TOO_LARGE)),
        415: error_examples(unsupported_media_type=("unsupported_media_type", NOT_JSON_TYPE)),
        422: error_examples(validation_error=("validation_error", [FIELD_ERROR])),
        429: error_examples(rate_limited=THROTTLED),
        503: error_examples(
            service_unavailable=("service_unavailable", "The service is briefly unavailable.")
        ),
    }
    for key, doc in per_status.items():
        responses[int(key[1:])] = doc
    for status in (429, 503):
        responses[status] = {**responses[status], "headers": RETRY_AFTER}
    return {"responses": responses}


# The common error answers' documentation, for routes with no answer of their own.
ERROR_DOCS = error_docs()
WWW_AUTHENTICATE = {
    "WWW-Authenticate": {
        "description": "Always Bearer.",
        "required": True,
        "schema": {"type": "string", "enum": ["Bearer"]},
    }
}
AUTHED_DOCS = {"responses": {401: {"headers": WWW_AUTHENTICATE}, 503: {"headers": RETRY_AFTER}}}
