"""/auth: log in by password or emailed code, reset a password, log out."""

from django.conf import settings
from django.http import HttpRequest
from ninja import Router, Status

from core.throttles import ClientIPThrottle
from signup.api.bearer import bearer
from signup.api.clients import request_client
from signup.flows.login import login_code_request, login_code_verify, user_login
from signup.flows.mfa_login import CHALLENGE_GONE, INVALID_SECOND_FACTOR, LoginResult, mfa_login
from signup.flows.password import password_reset_confirm, password_reset_request
from signup.flows.sessions import sessions_end
from signup.schemas.auth import (
    CodeSentOut,
    LoginIn,
    LogoutIn,
    MfaLoginIn,
    MfaRequiredOut,
    ResetConfirmIn,
    TokenOut,
)
from signup.schemas.common import (
    AUTHED_DOCS,
    AUTHED_ERRORS,
    BODY_ERRORS,
    ERROR_DOCS,
    ERROR_RESPONSES,
    CodeIn,
    EmailIn,
    error_docs,
    error_examples,
)

router = Router(tags=["accounts"])

MFA_DOCS = error_docs(
    s400=error_examples(
        wrong_code=("invalid_code", INVALID_SECOND_FACTOR),
        mfa_token_gone=("invalid_code", CHALLENGE_GONE),
    ),
    s429=error_examples(
        too_many_attempts=(
            "too_many_attempts",
            "Too many wrong two-factor codes for this account. Try again in 840 seconds.",
        )
    ),
)


def _token_out(raw: str) -> TokenOut:
    return TokenOut(access_token=raw, expires_in=settings.ACCESS_TOKEN_TTL_SECONDS)


def _login_out(result: LoginResult) -> dict:
    """The token, or (two-factor login on) the mfa_token for the second step.

    As a dict: ninja validates an object against the answer's union
    (TokenOut | MfaRequiredOut) by reading each member's fields from it; a
    field the object lacks is looked up through django.template.Variable,
    which logs the miss at DEBUG (django.template) with the object's repr,
    the access token or mfa_token in it. A dict has no such lookup."""
    if result.mfa_token is not None:
        return MfaRequiredOut(mfa_token=result.mfa_token).model_dump()
    assert result.access_token is not None
    return _token_out(result.access_token).model_dump()


LOGIN_ANSWERS = {200: TokenOut | MfaRequiredOut}


@router.post(
    "/login",
    response={**LOGIN_ANSWERS, 403: ERROR_RESPONSES[400], **ERROR_RESPONSES},
    throttle=ClientIPThrottle("auth-login"),
    summary="Log in with email and password",
    openapi_extra=ERROR_DOCS,
)
def login(request: HttpRequest, payload: LoginIn):
    """400 for any wrong address or password (or a deactivated account), after
    the same work; 403 for the right password on an unverified address. With
    two-factor login on, a right password answers the second step's mfa_token."""
    client = request_client(request)
    result = user_login(email=payload.email, password=payload.password, client=client)
    return Status(200, _login_out(result))


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
    response={**LOGIN_ANSWERS, **ERROR_RESPONSES},
    throttle=ClientIPThrottle("auth-code-verify"),
    summary="Log in with an emailed code",
    openapi_extra=ERROR_DOCS,
)
def code_verify(request: HttpRequest, payload: CodeIn):
    """With two-factor login on, a right code answers the second step's mfa_token."""
    client = request_client(request)
    result = login_code_verify(email=payload.email, code=payload.code, client=client)
    return Status(200, _login_out(result))


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
    response={**LOGIN_ANSWERS, **ERROR_RESPONSES},
    throttle=ClientIPThrottle("auth-reset-confirm"),
    summary="Set a new password with the emailed code",
    openapi_extra=ERROR_DOCS,
)
def reset_confirm(request: HttpRequest, payload: ResetConfirmIn):
    """Every older token of the account stops working; a new one is returned
    (with two-factor login on, the second step's mfa_token: a reset leaves it on)."""
    result = password_reset_confirm(
        email=payload.email,
        code=payload.code,
        password=payload.password,
        client=request_client(request),
    )
    return Status(200, _login_out(result))


@router.post(
    "/mfa",
    response={200: TokenOut, **ERROR_RESPONSES},
    throttle=ClientIPThrottle("auth-mfa"),
    summary="Log in, second step: a code from the authenticator app or a recovery code",
    openapi_extra=MFA_DOCS,
)
def mfa(request: HttpRequest, payload: MfaLoginIn):
    """400 invalid_code for a wrong or used code, or an expired or used
    mfa_token; 429 too_many_attempts after 5 wrong ones for the account in
    15 minutes. A recovery code works once; the user is told how many remain."""
    raw, _ = mfa_login(
        mfa_token=payload.mfa_token,
        code=payload.code,
        recovery_code=payload.recovery_code,
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
