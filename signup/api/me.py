"""/me: the signed-in user's profile, wallet and notifications (Bearer token)."""

from django.http import HttpRequest
from ninja import Path, Query, Router, Status

from core.errors import ApiError
from messaging import feed
from signup.api.bearer import bearer
from signup.flows.profile import profile_update
from signup.schemas.common import AUTHED_DOCS, AUTHED_ERRORS, ErrorOut, FieldErrorsOut
from signup.schemas.me import (
    BODY_ERRORS,
    FeedQuery,
    MeOut,
    MePatchIn,
    NotificationsOut,
    WalletOut,
)
from signup.selectors import user_wallet

router = Router(tags=["me"], auth=bearer)

MAX_ID = 2**63 - 1


def _me(user) -> MeOut:
    return MeOut(
        id=user.pk,
        email=user.email,
        full_name=user.profile.full_name,
        verified=user.is_verified,
        date_joined=user.date_joined,
    )


@router.get("", response={200: MeOut, **AUTHED_ERRORS}, openapi_extra=AUTHED_DOCS)
def me(request: HttpRequest):
    """No query beyond the token's: its lookup joins the user and profile."""
    return Status(200, _me(request.auth.user))


@router.patch(
    "",
    response={200: MeOut, **AUTHED_ERRORS, **BODY_ERRORS},
    openapi_extra=AUTHED_DOCS,
)
def me_update(request: HttpRequest, payload: MePatchIn):
    """Fields left out are unchanged."""
    user = request.auth.user
    if payload.full_name is not None:
        profile_update(user=user, full_name=payload.full_name)
    return Status(200, _me(user))


@router.get("/wallet", response={200: WalletOut, **AUTHED_ERRORS}, openapi_extra=AUTHED_DOCS)
def wallet(request: HttpRequest):
    found = user_wallet(user_id=request.auth.user_id)
    return Status(200, WalletOut(balance=f"{found.balance:.2f}", currency=found.currency))


@router.get(
    "/notifications",
    response={200: NotificationsOut, 422: FieldErrorsOut, **AUTHED_ERRORS},
    openapi_extra=AUTHED_DOCS,
)
def notifications(request: HttpRequest, query: Query[FeedQuery]):
    """Newest first; next_cursor pages to older ones. One query per page."""
    cursor = feed.Cursor.decode(query.cursor) if query.cursor else None
    page, following = feed.notification_feed(
        user_id=request.auth.user_id, limit=query.limit, unread=query.unread, cursor=cursor
    )
    return Status(200, NotificationsOut.page(page, following))


@router.post(
    "/notifications/read-all",
    response={204: None, **AUTHED_ERRORS},
    openapi_extra=AUTHED_DOCS,
)
def notifications_read_all(request: HttpRequest):
    feed.notifications_mark_all_read(user_id=request.auth.user_id)
    return Status(204, None)


@router.post(
    "/notifications/{notification_id}/read",
    response={204: None, 404: ErrorOut, 422: FieldErrorsOut, **AUTHED_ERRORS},
    openapi_extra=AUTHED_DOCS,
)
def notification_read(request: HttpRequest, notification_id: int = Path(..., ge=1, le=MAX_ID)):
    """404 for an id that is not one of this user's notifications."""
    if not feed.notification_mark_read(
        user_id=request.auth.user_id, notification_id=notification_id
    ):
        raise ApiError(404, "not_found", "No such notification.")
    return Status(204, None)
