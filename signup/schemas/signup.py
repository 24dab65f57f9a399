"""POST /signup, /signup/verify, /signup/resend: bodies and OpenAPI examples."""

from typing import Literal

from ninja import Field, Schema
from pydantic import ConfigDict, ValidationInfo, field_validator

from core.bodies import NOT_JSON
from signup.flows.codes import INVALID_CODE, LOCKED_DETAIL
from signup.models import VerificationCode
from signup.schemas.common import (
    POLICY_TEXT,
    THROTTLED,
    CodeIn,
    EmailIn,
    _Applicant,
    error_docs,
    error_examples,
    full_name_checked,
    optional,
    password_validated,
)


class SignupIn(EmailIn):
    full_name: str = Field(
        "",
        max_length=150,
        examples=["Ada Lovelace"],
        description="Optional, shown in the app.",
        json_schema_extra=optional,
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
        return full_name_checked(value)

    @field_validator("password")
    @classmethod
    def _password(cls, value: str, info: ValidationInfo) -> str:
        user = _Applicant(
            email=info.data.get("email", ""), full_name=info.data.get("full_name", "")
        )
        return password_validated(value, user=user)


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


SIGNUP_DOCS = error_docs(
    s422=error_examples(
        validation_error=(
            "validation_error",
            [
                {
                    "type": "password_too_common",
                    "loc": ["body", "password"],
                    "msg": "Choose a stronger password: This password is too common.",
                }
            ],
        ),
        idempotency_key_reused=(
            "idempotency_key_reused",
            [
                {
                    "type": "idempotency_key_reused",
                    "loc": ["header", "Idempotency-Key"],
                    "msg": "This Idempotency-Key was already used with a different request "
                    "body. Use a new key for a new request.",
                }
            ],
        ),
    )
)


VERIFY_DOCS = error_docs(
    s400=error_examples(
        invalid_code=("invalid_code", INVALID_CODE), invalid_json=("invalid_json", NOT_JSON)
    ),
    s429=error_examples(
        too_many_attempts=(
            "too_many_attempts",
            LOCKED_DETAIL[VerificationCode.Purpose.VERIFY_EMAIL],
        ),
        rate_limited=THROTTLED,
    ),
)


RESEND_DOCS = error_docs(
    s429=error_examples(
        rate_limited=(
            "rate_limited",
            "A code was asked for this address recently. Check your inbox, "
            "or try again in 42 seconds.",
        )
    )
)


# The view reads the header itself (request.headers), so that a malformed key
# is a 422 with its own message; this documents it.
IDEMPOTENCY_KEY = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "description": "Makes a retry safe: the same key with the same body within 24 hours "
    "answers what the first request answered and does nothing more; with another body, 422.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
}
