"""/auth: bodies of login, code login and password reset."""

from typing import ClassVar, Literal

from ninja import Field, Schema
from pydantic import ConfigDict, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from signup.schemas.common import (
    CodeIn,
    EmailIn,
    ObjectBody,
    _Applicant,
    optional,
    password_validated,
)


class LoginIn(EmailIn):
    password: str = Field(..., min_length=1, max_length=4096, examples=["correct horse battery"])


class ResetConfirmIn(CodeIn):
    password: str = Field(
        ...,
        min_length=1,
        max_length=4096,
        description="The new password: 10 to 4096 characters, not common, not all digits, "
        "not like the email.",
        examples=["a new long passphrase"],
    )

    @field_validator("password")
    @classmethod
    def _password(cls, value: str, info: ValidationInfo) -> str:
        return password_validated(value, user=_Applicant(email=info.data.get("email", "")))


class LogoutIn(ObjectBody):
    """Which sessions end; the body may be left out (current)."""

    object_hint: ClassVar[str] = 'Send a JSON object, such as {"scope": "others"}, or no body.'

    scope: Literal["current", "others", "all"] = Field(
        "current",
        description="current: this token; others: every other session of the account "
        "(this one stays); all: every session, this one included.",
        examples=["others"],
        json_schema_extra=optional,
    )


class TokenOut(Schema):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    access_token: str = Field(..., examples=["kXq3v0b8Yq2n6Zr1cU9wJm4tHs7pLd5eAa0fGi2oBy8"])
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 (the scheme name, not a secret)
    expires_in: int = Field(..., description="Seconds until the token expires.", examples=[86400])


class CodeSentOut(Schema):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    status: Literal["code_sent"] = "code_sent"
    email: str = Field(..., examples=["ada@example.com"])


class MfaRequiredOut(Schema):
    """A right first factor on an account with two-factor login on: send the
    mfa_token with a second factor to POST /api/v1/auth/mfa (within 5 minutes)."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    mfa_required: Literal[True] = True
    mfa_token: str = Field(..., examples=["Jm4tHs7pLd5eAa0fGi2oBy8kXq3v0b8Yq2n6Zr1cU9w"])


class MfaLoginIn(ObjectBody):
    """The login's second step: the mfa_token and either a code from the
    authenticator app or one of the recovery codes."""

    object_hint: ClassVar[str] = 'Send a JSON object, such as {"mfa_token": "...", "code": "..."}.'

    mfa_token: str = Field(
        ..., min_length=1, max_length=256, examples=["Jm4tHs7pLd5eAa0fGi2oBy8kXq3v0b8Yq2n6Zr1cU9w"]
    )
    code: str | None = Field(
        None,
        min_length=1,
        max_length=32,
        description="The 6-digit code the authenticator app shows.",
        examples=["492039"],
        json_schema_extra=optional,
    )
    recovery_code: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="One of the recovery codes (each works once), instead of code.",
        examples=["k7mq-2xwp-9hcd"],
        json_schema_extra=optional,
    )

    @model_validator(mode="after")
    def _one_factor(self):
        if (self.code is None) == (self.recovery_code is None):
            raise PydanticCustomError(
                "second_factor_missing",
                "Send code (from your authenticator app) or recovery_code, one of the two.",
            )
        return self
