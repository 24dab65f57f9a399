"""/signup: sign up, verify the emailed code, ask for a fresh one."""

from django.http import HttpRequest
from ninja import Router, Status

from core.throttles import ClientIPThrottle
from signup.flows.signup import user_signup
from signup.flows.verification import email_code_resend, email_verify, verification_token_new
from signup.idempotency import signup_once
from signup.schemas.common import ERROR_RESPONSES, EmailIn
from signup.schemas.signup import (
    IDEMPOTENCY_KEY,
    RESEND_DOCS,
    SIGNUP_DOCS,
    VERIFY_DOCS,
    PendingOut,
    SignupIn,
    SignupPendingOut,
    VerifiedOut,
    VerifyIn,
)

router = Router(tags=["signup"])


@router.post(
    "",
    response={202: SignupPendingOut, **ERROR_RESPONSES},
    throttle=ClientIPThrottle("signup"),
    summary="Sign up with email and password",
    openapi_extra={**SIGNUP_DOCS, "parameters": [IDEMPOTENCY_KEY]},
)
def signup(request: HttpRequest, payload: SignupIn):
    """Same 202 whether the address is new or taken; the code comes by email.

    The answer's verification_token goes back with the code to verify. With
    an Idempotency-Key header, a retry of the same body gets the first
    answer (the same token) and causes nothing more.
    """
    fields = {"email": payload.email, "password": payload.password, "full_name": payload.full_name}
    key = request.headers.get("Idempotency-Key")
    if key is not None:
        return Status(202, signup_once(key=key, **fields))
    token = verification_token_new()
    user_signup(**fields, verification_token=token)
    return Status(202, SignupPendingOut(email=payload.email, verification_token=token))


@router.post(
    "/verify",
    response={200: VerifiedOut, **ERROR_RESPONSES},
    throttle=ClientIPThrottle("signup-verify"),
    summary="Verify the emailed code",
    openapi_extra=VERIFY_DOCS,
)
def verify(request: HttpRequest, payload: VerifyIn):
    """200 on the right code with this client's signup token; one 400 for every
    wrong, expired or used code, unknown address or foreign token; 429 after
    5 wrong codes for the address (any address)."""
    email_verify(
        email=payload.email, code=payload.code, verification_token=payload.verification_token
    )
    return Status(200, VerifiedOut(email=payload.email))


@router.post(
    "/resend",
    response={202: PendingOut, **ERROR_RESPONSES},
    throttle=ClientIPThrottle("signup-resend"),
    summary="Email a fresh code",
    openapi_extra=RESEND_DOCS,
)
def resend(request: HttpRequest, payload: EmailIn):
    """202 for any address; 429 within 60 s of the last resend of this address
    or past 5 in an hour (counted from resends only, for any address)."""
    email_code_resend(email=payload.email)
    return Status(202, PendingOut(email=payload.email))
