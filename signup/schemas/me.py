"""/me: the profile, wallet and notifications bodies."""

from datetime import datetime
from typing import ClassVar, Literal

from ninja import Field, Schema
from pydantic import ConfigDict, field_validator, model_validator
from pydantic_core import PydanticCustomError

from messaging.feed import Cursor
from signup.schemas.common import (
    POLICY_TEXT,
    ObjectBody,
    full_name_checked,
    normalize_email,
    optional,
)
from signup.shapes import notification_shape, session_shape


class MeOut(Schema):
    id: int = Field(..., examples=[42])
    email: str = Field(..., examples=["ada@example.com"])
    full_name: str = Field(..., examples=["Ada Lovelace"])
    verified: bool = Field(..., examples=[True])
    date_joined: datetime = Field(..., examples=["2026-12-01T09:30:00Z"])


class MePatchIn(ObjectBody):
    """The fields to change; those left out stay as they are. Unknown fields are a 422."""

    object_hint: ClassVar[str] = 'Send a JSON object, such as {"full_name": "Ada"}.'

    model_config = ConfigDict(extra="forbid")

    # Left out: unchanged (the default is never validated); sent as null: 422.
    full_name: str = Field(None, max_length=150, examples=["Ada Lovelace"])  # type: ignore[assignment]

    @field_validator("full_name")
    @classmethod
    def _full_name(cls, value: str) -> str:
        return full_name_checked(value)


class WalletOut(Schema):
    balance: str = Field(..., pattern=r"^-?\d+\.\d{2}$", examples=["0.00"])
    currency: str = Field(..., examples=["USD"])


class NotificationOut(Schema):
    id: int = Field(..., examples=[1017])
    kind: str = Field(..., examples=["welcome"])
    title: str = Field(..., examples=["Welcome to Payshift"])
    body: str = Field(
        ...,
        examples=[
            "Your Payshift account has been created. If you have not verified your email "
            "address yet, enter the code we emailed you (you can ask for a new one)."
        ],
    )
    created_at: datetime = Field(..., examples=["2026-12-01T09:30:00Z"])
    read: bool = Field(..., examples=[False])


class NotificationsOut(Schema):
    items: list[NotificationOut] = Field(
        ...,
        examples=[
            [
                {
                    "id": 1017,
                    "kind": "welcome",
                    "title": "Welcome to Payshift",
                    "body": "Your account is ready.",
                    "created_at": "2026-12-01T09:30:00Z",
                    "read": False,
                }
            ]
        ],
    )
    next_cursor: str | None = Field(
        ...,
        description="Pass as cursor= for the next (older) page; null on the last page.",
        examples=["MTc5NjExNzQwMDAwMDAwMC4xMDE3"],
    )

    @classmethod
    def page(cls, page: list, following: Cursor | None) -> dict:
        """The answer for one page of messaging.feed.notification_feed."""
        items = [notification_shape(n) for n in page]
        return {"items": items, "next_cursor": following.encode() if following else None}


class ReauthIn(Schema):
    """Re-authentication: the current password, or a fresh login code
    (POST /api/v1/auth/code) for a user who logs in by code; and mfa_code
    where two-factor login is on."""

    password: str | None = Field(
        None, min_length=1, max_length=4096, json_schema_extra=optional, examples=["my passphrase"]
    )
    code: str | None = Field(
        None, min_length=1, max_length=32, json_schema_extra=optional, examples=["042917"]
    )
    mfa_code: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="Where two-factor login is on: the code the authenticator app shows, "
        "or a recovery code.",
        json_schema_extra=optional,
        examples=["492039"],
    )

    @model_validator(mode="after")
    def _one_proof(self):
        if self.password is None and self.code is None:
            raise PydanticCustomError(
                "reauthentication_missing",
                "Confirm it is you: send the current password, or a login code.",
            )
        return self


class EmailChangeIn(ReauthIn):
    new_email: str = Field(
        ..., max_length=254, examples=["ada@new.example"], json_schema_extra={"format": "idn-email"}
    )

    @field_validator("new_email")
    @classmethod
    def _email(cls, value: str) -> str:
        return normalize_email(value)


class EmailChangeOut(Schema):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    status: Literal["confirmation_sent"] = "confirmation_sent"
    new_email: str = Field(..., examples=["ada@new.example"])


class EmailConfirmIn(Schema):
    code: str = Field(
        ...,
        min_length=1,
        max_length=32,
        examples=["042917"],
        description="The 6-digit code sent to the new address.",
    )


class PasswordChangeIn(Schema):
    current_password: str = Field(
        ..., min_length=1, max_length=4096, examples=["correct horse battery staple"]
    )
    new_password: str = Field(
        ...,
        min_length=1,
        max_length=4096,
        description=POLICY_TEXT,
        examples=["a new long passphrase"],
        json_schema_extra={"minLength": 10},
    )
    mfa_code: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="Where two-factor login is on: the code the authenticator app shows, "
        "or a recovery code.",
        json_schema_extra=optional,
        examples=["492039"],
    )


class SessionOut(Schema):
    id: int = Field(..., examples=[311])
    created_at: datetime = Field(..., examples=["2026-12-01T09:30:00Z"])
    last_used_at: datetime | None = Field(..., examples=["2026-12-01T10:02:00Z"])
    expires_at: datetime = Field(..., examples=["2026-12-02T09:30:00Z"])
    client: str = Field(..., description="From the User-Agent.", examples=["Firefox on Linux"])
    ip: str | None = Field(..., examples=["203.0.113.9"])
    current: bool = Field(..., description="The session of this request's token.", examples=[True])


class SessionsOut(Schema):
    items: list[SessionOut] = Field(
        ...,
        examples=[
            [
                {
                    "id": 311,
                    "created_at": "2026-12-01T09:30:00Z",
                    "last_used_at": "2026-12-01T10:02:00Z",
                    "expires_at": "2026-12-02T09:30:00Z",
                    "client": "Firefox on Linux",
                    "ip": "203.0.113.9",
                    "current": True,
                }
            ]
        ],
    )

    @classmethod
    def of(cls, tokens: list, current_id: int) -> dict:
        return {"items": [{**session_shape(t), "current": t.id == current_id} for t in tokens]}


class ExportSessionOut(Schema):
    """A live session as GET /me/sessions shows it (no token, no hash)."""

    id: int = Field(..., examples=[311])
    created_at: datetime = Field(..., examples=["2026-12-01T09:30:00Z"])
    last_used_at: datetime | None = Field(..., examples=["2026-12-01T10:02:00Z"])
    expires_at: datetime = Field(..., examples=["2026-12-02T09:30:00Z"])
    client: str = Field(..., description="From the User-Agent.", examples=["Firefox on Linux"])
    ip: str | None = Field(..., examples=["203.0.113.9"])


class ExportOut(Schema):
    """Everything the service holds about the user (signup.flows.export),
    streamed as one document; no secret (no hash, no token)."""

    profile: MeOut = Field(
        ...,
        examples=[
            {
                "id": 42,
                "email": "ada@example.com",
                "full_name": "Ada Lovelace",
                "verified": True,
                "date_joined": "2026-12-01T09:30:00Z",
            }
        ],
    )
    wallet: WalletOut = Field(..., examples=[{"balance": "0.00", "currency": "USD"}])
    notifications: list[NotificationOut] = Field(
        ...,
        description="Every notification, newest first.",
        examples=[
            [
                {
                    "id": 1017,
                    "kind": "welcome",
                    "title": "Welcome to Payshift",
                    "body": "Your account is ready.",
                    "created_at": "2026-12-01T09:30:00Z",
                    "read": False,
                }
            ]
        ],
    )
    sessions: list[ExportSessionOut] = Field(
        ...,
        description="The live sessions, newest first.",
        examples=[
            [
                {
                    "id": 311,
                    "created_at": "2026-12-01T09:30:00Z",
                    "last_used_at": "2026-12-01T10:02:00Z",
                    "expires_at": "2026-12-02T09:30:00Z",
                    "client": "Firefox on Linux",
                    "ip": "203.0.113.9",
                }
            ]
        ],
    )


class CloseIn(ReauthIn):
    """DELETE /api/v1/me: re-authentication alone (the password, or a fresh login code)."""


class FeedQuery(Schema):
    unread: bool = Field(
        False, description="true: only notifications not yet read.", examples=[True]
    )
    limit: int = Field(20, ge=1, le=100, examples=[20])
    cursor: str | None = Field(
        None,
        max_length=100,
        description="next_cursor of the last page.",
        examples=["MTc5NjExNzQwMDAwMDAwMC4xMDE3"],
    )

    @field_validator("cursor")
    @classmethod
    def _cursor(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                Cursor.decode(value)
            except ValueError:
                raise PydanticCustomError(
                    "cursor_invalid",
                    "Not a cursor from this API: pass next_cursor from the previous page.",
                ) from None
        return value


class MfaStatusOut(Schema):
    totp: bool = Field(
        ..., description="Two-factor login with an authenticator app is on.", examples=[True]
    )
    recovery_codes_left: int = Field(..., description="Unused recovery codes.", examples=[9])


class TotpEnrolOut(Schema):
    """Add the secret to an authenticator app (scan the QR code, or open the
    URI on the phone), then confirm with the code it shows. Shown once."""

    secret: str = Field(
        ...,
        description="Base32, for typing in by hand.",
        examples=["JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"],
    )
    otpauth_uri: str = Field(
        ...,
        examples=[
            "otpauth://totp/Payshift:ada%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
            "&issuer=Payshift"
        ],
    )
    qr_svg: str = Field(
        ...,
        description="The URI as a QR code: an SVG data URI.",
        examples=["data:image/svg+xml,%3Csvg..."],
    )


class TotpConfirmIn(Schema):
    code: str = Field(
        ...,
        min_length=1,
        max_length=32,
        description="The 6-digit code the authenticator app shows.",
        examples=["492039"],
    )


class RecoveryCodesOut(Schema):
    recovery_codes: list[str] = Field(
        ...,
        description="Each logs in once instead of an app code. Shown this once: keep them safe.",
        examples=[["k7mq-2xwp-9hcd", "r4ts-8bvn-3jzy"]],
    )
