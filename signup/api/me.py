"""/me: the signed-in user's profile, wallet, notifications, password and
sessions (Bearer token)."""

from django.http import HttpRequest, StreamingHttpResponse
from ninja import Path, Query, Router, Status

from core.errors import ApiError
from messaging import feed
from signup.api.bearer import bearer
from signup.api.clients import request_proof
from signup.flows.closing import WALLET_NOT_EMPTY, account_close
from signup.flows.email_change import email_change_confirm, email_change_request
from signup.flows.export import account_export
from signup.flows.password import password_change
from signup.flows.profile import profile_update
from signup.flows.sessions import session_end
from signup.schemas.common import (
    AUTHED_DOCS,
    AUTHED_ERRORS,
    BODY_ERRORS,
    RETRY_AFTER,
    ErrorOut,
    FieldErrorsOut,
    error_examples,
    password_policy_check,
)
from signup.schemas.me import (
    CloseIn,
    EmailChangeIn,
    EmailChangeOut,
    EmailConfirmIn,
    ExportOut,
    FeedQuery,
    MeOut,
    MePatchIn,
    NotificationsOut,
    PasswordChangeIn,
    SessionsOut,
    WalletOut,
)
from signup.selectors import user_sessions, user_wallet
from signup.shapes import profile_shape, wallet_shape

router = Router(tags=["me"], auth=bearer)

MAX_ID = 2**63 - 1
AUTHED_RETRY_DOCS = {"responses": {**AUTHED_DOCS["responses"], 429: {"headers": RETRY_AFTER}}}


def _me(user) -> MeOut:
    return MeOut(**profile_shape(user))


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
    return Status(200, wallet_shape(found))


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


@router.post(
    "/password",
    response={204: None, 429: ErrorOut, **BODY_ERRORS, **AUTHED_ERRORS},
    summary="Change the password (re-authenticated with the current one)",
    openapi_extra=AUTHED_RETRY_DOCS,
)
def password_change_view(request: HttpRequest, payload: PasswordChangeIn):
    """400 invalid_credentials for a wrong current password (a failed login:
    429 past the limit); 422 for a refused new one. Every other session ends."""
    password_policy_check(payload.new_password, user=request.auth.user, field="new_password")
    proof = request_proof(request, payload, password=payload.current_password)
    password_change(token=request.auth, proof=proof, new_password=payload.new_password)
    return Status(204, None)


@router.get("/sessions", response={200: SessionsOut, **AUTHED_ERRORS}, openapi_extra=AUTHED_DOCS)
def sessions(request: HttpRequest):
    """The account's live sessions (tokens), newest first; current marks this one."""
    tokens = user_sessions(user_id=request.auth.user_id)
    return Status(200, SessionsOut.of(tokens, current_id=request.auth.pk))


@router.delete(
    "/sessions/{session_id}",
    response={204: None, 404: ErrorOut, 422: FieldErrorsOut, **AUTHED_ERRORS},
    openapi_extra=AUTHED_DOCS,
)
def session_delete(request: HttpRequest, session_id: int = Path(..., ge=1, le=MAX_ID)):
    """404 for an id that is not one of this user's live sessions."""
    session_end(token=request.auth, session_id=session_id)
    return Status(204, None)


@router.post(
    "/email",
    response={202: EmailChangeOut, 429: ErrorOut, **BODY_ERRORS, **AUTHED_ERRORS},
    summary="Move the account to a new address (re-authenticated)",
    openapi_extra=AUTHED_RETRY_DOCS,
)
def email_change(request: HttpRequest, payload: EmailChangeIn):
    """202 whether the new address is free, taken or the user's own; a code
    goes to a free one (confirm with it), a notice to the current one."""
    email_change_request(
        user=request.auth.user, new_email=payload.new_email, proof=request_proof(request, payload)
    )
    return Status(202, EmailChangeOut(new_email=payload.new_email))


@router.post(
    "/email/confirm",
    response={200: MeOut, 429: ErrorOut, **BODY_ERRORS, **AUTHED_ERRORS},
    summary="Confirm the new address with the code sent to it",
    openapi_extra=AUTHED_RETRY_DOCS,
)
def email_change_confirm_view(request: HttpRequest, payload: EmailConfirmIn):
    """400 invalid_code for a wrong, expired or used code, or a new address
    taken meanwhile; 429 after 5 wrong codes. Other sessions end."""
    return Status(200, _me(email_change_confirm(token=request.auth, code=payload.code)))


@router.get(
    "/export",
    response={200: ExportOut, 429: ErrorOut, **AUTHED_ERRORS},
    summary="Everything the service holds about the user, as one JSON document",
    openapi_extra=AUTHED_RETRY_DOCS,
)
def export(request: HttpRequest):
    """Streamed as a download; 429 past EXPORTS_PER_HOUR for the user."""
    response = StreamingHttpResponse(
        account_export(user=request.auth.user), content_type="application/json"
    )
    response["Content-Disposition"] = 'attachment; filename="payshift-export.json"'
    return response


CLOSE_DOCS = {
    "responses": {
        **AUTHED_RETRY_DOCS["responses"],
        409: error_examples(wallet_not_empty=("wallet_not_empty", WALLET_NOT_EMPTY)),
    }
}


@router.delete(
    "",
    response={204: None, 409: ErrorOut, 429: ErrorOut, **BODY_ERRORS, **AUTHED_ERRORS},
    summary="Close the account (re-authenticated)",
    openapi_extra=CLOSE_DOCS,
)
def account_close_view(request: HttpRequest, payload: CloseIn):
    """Tokens revoked, name erased, the address freed; a goodbye email and a
    notice to every admin. 409 wallet_not_empty while the balance is not
    zero; 400 invalid_credentials for a wrong password or code (a failed
    login: 429 past the limit)."""
    account_close(user=request.auth.user, proof=request_proof(request, payload))
    return Status(204, None)
