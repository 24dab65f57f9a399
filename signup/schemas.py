"""Request and response bodies (docs/api.md), validated by ninja/pydantic.

Bad input is a 422 with the failing field in loc and a message a person can
act on: email syntax from email-validator, password policy from Django's
AUTH_PASSWORD_VALIDATORS (with the email and name for the similarity check).
"""

from types import SimpleNamespace
from typing import Literal

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from email_validator import EmailNotValidError, validate_email
from ninja import Field, Schema
from pydantic import ConfigDict, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError


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


def _optional(schema: dict) -> None:
    """No "default" in the OpenAPI document: generators (openapi-typescript)
    make a property with a default required in the type they write."""
    schema.pop("default", None)


class SignupIn(EmailIn):
    full_name: str = Field(
        "",
        max_length=150,
        examples=["Ada Lovelace"],
        description="Optional, shown in the app.",
        json_schema_extra=_optional,
    )
    # minLength 10 is stated for clients, but enforced by Django's validators
    # (so a short password is a password_too_short, like every other rule).
    password: str = Field(
        ...,
        min_length=1,
        max_length=4096,
        description=POLICY_TEXT,
        examples=["correct horse battery staple"],
        json_schema_extra={"minLength": 10},
    )

    @field_validator("full_name")
    @classmethod
    def _full_name(cls, value: str) -> str:
        """PostgreSQL text cannot hold NUL: a 422 here, not a DataError (500) later."""
        if "\x00" in value:
            raise PydanticCustomError(
                "null_character", "Full name may not contain null (\\x00) characters."
            )
        return value

    @field_validator("password")
    @classmethod
    def _password(cls, value: str, info: ValidationInfo) -> str:
        user = _Applicant(
            email=info.data.get("email", ""), full_name=info.data.get("full_name", "")
        )
        return password_validated(value, user=user)


class CodeIn(EmailIn):
    """An address and the 6-digit code emailed to it (login code, reset)."""

    code: str = Field(
        ...,
        min_length=1,
        max_length=32,
        examples=["042917"],
        description="The 6-digit code from the email.",
    )


class VerifyIn(CodeIn):
    verification_token: str = Field(
        ...,
        min_length=1,
        max_length=256,
        examples=["q1Xk3f0l9GmZ8cB2T4vN7wYp5sRj6eHa0uDi1oLc2yW"],
        description="The verification_token of this client's signup answer: the account "
        "gets the password of the signup whose token is presented.",
    )


class PendingOut(Schema):
    # A default is still always sent: the OpenAPI document marks it required.
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    status: Literal["verification_pending"] = "verification_pending"
    email: str = Field(..., examples=["ada@example.com"])


class SignupPendingOut(PendingOut):
    verification_token: str = Field(
        ...,
        examples=["q1Xk3f0l9GmZ8cB2T4vN7wYp5sRj6eHa0uDi1oLc2yW"],
        description="Opaque; for this client only. Send it back with the code to "
        "POST /api/v1/signup/verify. Keep it like a password until then.",
    )


class VerifiedOut(Schema):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    status: Literal["verified"] = "verified"
    email: str = Field(..., examples=["ada@example.com"])


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
