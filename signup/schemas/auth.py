"""/auth: bodies of login, code login and password reset."""

from typing import Literal

from ninja import Field, Schema
from pydantic import ConfigDict, ValidationInfo, field_validator

from signup.schemas.common import CodeIn, EmailIn, _Applicant, password_validated


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


class TokenOut(Schema):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    access_token: str = Field(..., examples=["kXq3v0b8Yq2n6Zr1cU9wJm4tHs7pLd5eAa0fGi2oBy8"])
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 (the scheme name, not a secret)
    expires_in: int = Field(..., description="Seconds until the token expires.", examples=[86400])


class CodeSentOut(Schema):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    status: Literal["code_sent"] = "code_sent"
    email: str = Field(..., examples=["ada@example.com"])
