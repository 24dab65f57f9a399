"""/me: the profile, wallet and notifications bodies."""

from datetime import datetime

from ninja import Field, Schema
from pydantic import ConfigDict, field_validator, model_validator
from pydantic_core import PydanticCustomError

from messaging.feed import Cursor
from signup.schemas.common import ErrorOut, FieldErrorsOut, full_name_checked

# A body-taking /me request's own errors (besides AUTHED_ERRORS).
BODY_ERRORS = {400: ErrorOut, 413: ErrorOut, 415: ErrorOut, 422: FieldErrorsOut}


class MeOut(Schema):
    id: int = Field(..., examples=[42])
    email: str = Field(..., examples=["ada@example.com"])
    full_name: str = Field(..., examples=["Ada Lovelace"])
    verified: bool = Field(..., examples=[True])
    date_joined: datetime = Field(..., examples=["2026-12-01T09:30:00Z"])


class MePatchIn(Schema):
    """The fields to change; those left out stay as they are. Unknown fields are a 422."""

    model_config = ConfigDict(extra="forbid")

    # Left out: unchanged (the default is never validated); sent as null: 422.
    full_name: str = Field(None, max_length=150, examples=["Ada Lovelace"])  # type: ignore[assignment]

    @model_validator(mode="before")
    @classmethod
    def _object(cls, value):
        """Ninja hands a model validator its DjangoGetter; a JSON array read
        through attributes would pass as an empty patch."""
        if not isinstance(getattr(value, "_obj", value), dict):
            raise PydanticCustomError(
                "model_type", 'Send a JSON object, such as {"full_name": "Ada"}.'
            )
        return value

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
        items = [
            {
                "id": n.pk,
                "kind": n.kind,
                "title": n.title,
                "body": n.body,
                "created_at": n.created_at,
                "read": n.read_at is not None,
            }
            for n in page
        ]
        return {"items": items, "next_cursor": following.encode() if following else None}


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
