"""/auth: log in by password or emailed code, reset a password, log out."""

from django.conf import settings
from django.http import HttpRequest
from ninja import Router, Status

from core.throttles import ClientIPThrottle
from signup.api.bearer import bearer
from signup.api.clients import request_client
from signup.flows.login import login_code_request, login_code_verify, user_login
from signup.flows.password import password_reset_confirm, password_reset_request
from signup.flows.sessions import sessions_end
from signup.schemas.auth import CodeSentOut, LoginIn, LogoutIn, ResetConfirmIn, TokenOut
from signup.schemas.common import (
    AUTHED_DOCS,
    AUTHED_ERRORS,
    BODY_ERRORS,
    ERROR_DOCS,
    ERROR_RESPONSES,
    CodeIn,
    EmailIn,
)

router = Router(tags=["accounts"])


def _token_out(raw: str) -> TokenOut:
    return TokenOut(access_token=raw, expires_in=settings.ACCESS_TOKEN_TTL_SECONDS)


@router.post(
    "/login",
    response={200: TokenOut, 403: ERROR_RESPONSES[400], **ERROR_RESPONSES},
    throttle=ClientIPThrottle("auth-login"),
    summary="Log in with email and password",
    openapi_extra=ERROR_DOCS,
)
def login(request: HttpRequest, payload: LoginIn):
    """400 for any wrong address or password (or a deactivated account), after
    the same work; 403 for the right password on an unverified address."""
    client = request_client(request)
    raw, _ = user_login(email=payload.email, password=payload.password, client=client)
    return Status(200, _token_out(raw))


@router.post(
    "/code",
    response={202: CodeSentOut, **ERROR_RESPONSES},
    throttle=ClientIPThrottle("auth-code"),
    summary="Email a login code",
    openapi_extra=ERROR_DOCS,
)
def code_request(request: HttpRequest, payload: EmailIn):
    """202 for any address; the code goes only to a verified, active account."""
    login_code_request(email=payload.email)
    return Status(202, CodeSentOut(email=payload.email))


@router.post(
    "/code/verify",
    response={200: TokenOut, **ERROR_RESPONSES},
    throttle=ClientIPThrottle("auth-code-verify"),
    summary="Log in with an emailed code",
    openapi_extra=ERROR_DOCS,
)
def code_verify(request: HttpRequest, payload: CodeIn):
    client = request_client(request)
    raw, _ = login_code_verify(email=payload.email, code=payload.code, client=client)
    return Status(200, _token_out(raw))


@router.post(
    "/password/reset",
    response={202: CodeSentOut, **ERROR_RESPONSES},
    throttle=ClientIPThrottle("auth-reset"),
    summary="Email a password reset code",
    openapi_extra=ERROR_DOCS,
)
def reset_request(request: HttpRequest, payload: EmailIn):
    """202 for any address; the code goes only to an active account."""
    password_reset_request(email=payload.email)
    return Status(202, CodeSentOut(email=payload.email))


@router.post(
    "/password/reset/confirm",
    response={200: TokenOut, **ERROR_RESPONSES},
    throttle=ClientIPThrottle("auth-reset-confirm"),
    summary="Set a new password with the emailed code",
    openapi_extra=ERROR_DOCS,
)
def reset_confirm(request: HttpRequest, payload: ResetConfirmIn):
    """Every older token of the account stops working; a new one is returned."""
    raw, _ = password_reset_confirm(
        email=payload.email,
        code=payload.code,
        password=payload.password,
        client=request_client(request),
    )
    return Status(200, _token_out(raw))


@router.post(
    "/logout",
    response={204: None, **BODY_ERRORS, **AUTHED_ERRORS},
    auth=bearer,
    summary="Log out: this session, every other one, or all",
    openapi_extra=AUTHED_DOCS,
)
def logout(request: HttpRequest, payload: LogoutIn | None = None):
    """The body may be left out: this token stops working (scope current)."""
    sessions_end(token=request.auth, scope=payload.scope if payload else "current")
    return Status(204, None)
