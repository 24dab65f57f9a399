"""The signup endpoints: parse, call one service, shape the answer."""

from functools import partial

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ninja import Router, Status

from core.throttles import ClientIPThrottle
from signup import idempotency, services
from signup.schemas import (
    EmailIn,
    ErrorOut,
    FieldErrorsOut,
    PendingOut,
    SignupIn,
    VerifiedOut,
    VerifyIn,
)

router = Router(tags=["signup"])

INVALID_CODE = "Invalid or expired code."


@router.post(
    "",
    response={202: PendingOut, 422: FieldErrorsOut, 429: ErrorOut},
    throttle=ClientIPThrottle("signup"),
    summary="Sign up with email and password",
)
def signup(request: HttpRequest, payload: SignupIn):
    """Same 202 whether the address is new or taken; the code comes by email.

    With an Idempotency-Key header, a retry of the same body gets the first
    answer and causes nothing more (no second code, no second email).
    """
    answer = PendingOut(email=payload.email)
    key = request.headers.get("Idempotency-Key")
    if key is None:
        services.user_signup(
            email=payload.email, password=payload.password, full_name=payload.full_name
        )
        return Status(202, answer)

    if not idempotency.idempotency_key_valid(key):
        return _idempotency_error(
            "Idempotency-Key must be 1 to 255 printable ASCII characters.", "invalid"
        )
    fingerprint = idempotency.request_fingerprint(payload.model_dump())
    record = idempotency.idempotency_lookup(key=key)
    if record is None:
        try:
            services.user_signup(
                email=payload.email,
                password=payload.password,
                full_name=payload.full_name,
                record_answer=partial(
                    idempotency.idempotency_record,
                    key=key,
                    fingerprint=fingerprint,
                    status_code=202,
                    response=answer.model_dump(),
                ),
            )
            return Status(202, answer)
        except idempotency.IdempotencyReplayError:
            record = idempotency.idempotency_lookup(key=key)
    if record is None or record.fingerprint != fingerprint:
        return _idempotency_error(
            "This Idempotency-Key was already used with a different request body. "
            "Use a new key for a new request.",
            "reused",
        )
    return Status(record.status_code, record.response)


def _idempotency_error(message: str, kind: str):
    error = {
        "type": f"idempotency_key_{kind}",
        "loc": ["header", "Idempotency-Key"],
        "msg": message,
    }
    return Status(422, {"detail": [error]})


@router.post(
    "/verify",
    response={200: VerifiedOut, 400: ErrorOut, 429: ErrorOut},
    throttle=ClientIPThrottle("signup-verify"),
    summary="Verify the emailed code",
)
def verify(request: HttpRequest, response: HttpResponse, payload: VerifyIn):
    outcome = services.email_code_verify(email=payload.email, code=payload.code)
    if outcome is services.VerifyOutcome.VERIFIED:
        return Status(200, VerifiedOut(email=payload.email))
    if outcome is services.VerifyOutcome.LOCKED:
        response["Retry-After"] = str(settings.SIGNUP_CODE_COOLDOWN_SECONDS)
        return Status(
            429,
            {
                "detail": "This code has had too many wrong attempts and no longer works. "
                "Request a new code with /api/v1/signup/resend."
            },
        )
    return Status(400, {"detail": INVALID_CODE})


@router.post(
    "/resend",
    response={202: PendingOut, 429: ErrorOut},
    throttle=ClientIPThrottle("signup-resend"),
    summary="Email a fresh code",
)
def resend(request: HttpRequest, response: HttpResponse, payload: EmailIn):
    limit = services.email_code_resend(email=payload.email)
    if not limit.allowed:
        response["Retry-After"] = str(limit.retry_after)
        return Status(
            429,
            {
                "detail": "A code was sent to this address recently. Check your inbox, "
                f"or try again in {limit.retry_after} seconds."
            },
        )
    return Status(202, PendingOut(email=payload.email))
