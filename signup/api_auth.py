"""/auth: log in by password or emailed code, reset a password, log out."""

from django.conf import settings
from django.http import HttpRequest
from ninja import Router, Status

from core.throttles import ClientIPThrottle, client_ip
from signup import accounts
from signup.api import ERROR_HEADERS, RETRY_AFTER, code_limit_check
from signup.auth import bearer
from signup.limits import LimitResult
from signup.schemas import CodeIn, EmailIn
from signup.schemas_accounts import (
    AUTHED_ERRORS,
    POST_ERRORS,
    CodeSentOut,
    LoginIn,
    ResetConfirmIn,
    TokenOut,
)
from signup.tokens import token_revoke

router = Router(tags=["accounts"])

WWW_AUTHENTICATE = {
    "WWW-Authenticate": {
        "description": "Always Bearer.",
        "required": True,
        "schema": {"type": "string", "enum": ["Bearer"]},
    }
}
AUTHED_HEADERS = {"responses": {401: {"headers": WWW_AUTHENTICATE}, 503: {"headers": RETRY_AFTER}}}


def _token_out(raw: str) -> TokenOut:
    return TokenOut(access_token=raw, expires_in=settings.ACCESS_TOKEN_TTL_SECONDS)


def _code_answer(limit: LimitResult, email: str) -> Status:
    """202 for a code request the address's limits let through, else 429."""
    code_limit_check(limit)
    return Status(202, CodeSentOut(email=email))


@router.post(
    "/login",
    response={200: TokenOut, 403: POST_ERRORS[400], **POST_ERRORS},
    throttle=ClientIPThrottle("auth-login"),
    summary="Log in with email and password",
    openapi_extra=ERROR_HEADERS,
)
def login(request: HttpRequest, payload: LoginIn):
    """400 for any wrong address or password (or a deactivated account), after
    the same work; 403 for the right password on an unverified address."""
    raw, _ = accounts.user_login(
        email=payload.email, password=payload.password, ip=client_ip(request)
    )
    return Status(200, _token_out(raw))


@router.post(
    "/code",
    response={202: CodeSentOut, **POST_ERRORS},
    throttle=ClientIPThrottle("auth-code"),
    summary="Email a login code",
    openapi_extra=ERROR_HEADERS,
)
def code_request(request: HttpRequest, payload: EmailIn):
    """202 for any address; the code goes only to a verified, active account."""
    return _code_answer(accounts.login_code_request(email=payload.email), payload.email)


@router.post(
    "/code/verify",
    response={200: TokenOut, **POST_ERRORS},
    throttle=ClientIPThrottle("auth-code-verify"),
    summary="Log in with an emailed code",
    openapi_extra=ERROR_HEADERS,
)
def code_verify(request: HttpRequest, payload: CodeIn):
    raw, _ = accounts.login_code_verify(email=payload.email, code=payload.code)
    return Status(200, _token_out(raw))


@router.post(
    "/password/reset",
    response={202: CodeSentOut, **POST_ERRORS},
    throttle=ClientIPThrottle("auth-reset"),
    summary="Email a password reset code",
    openapi_extra=ERROR_HEADERS,
)
def reset_request(request: HttpRequest, payload: EmailIn):
    """202 for any address; the code goes only to an active account."""
    return _code_answer(accounts.password_reset_request(email=payload.email), payload.email)


@router.post(
    "/password/reset/confirm",
    response={200: TokenOut, **POST_ERRORS},
    throttle=ClientIPThrottle("auth-reset-confirm"),
    summary="Set a new password with the emailed code",
    openapi_extra=ERROR_HEADERS,
)
def reset_confirm(request: HttpRequest, payload: ResetConfirmIn):
    """Every older token of the account stops working; a new one is returned."""
    raw, _ = accounts.password_reset_confirm(
        email=payload.email, code=payload.code, password=payload.password
    )
    return Status(200, _token_out(raw))


@router.post(
    "/logout",
    response={204: None, **AUTHED_ERRORS},
    auth=bearer,
    summary="Log out: this token stops working",
    openapi_extra=AUTHED_HEADERS,
)
def logout(request: HttpRequest):
    token_revoke(token=request.auth)
    return Status(204, None)
