"""The signup endpoints: parse, call one service, shape the answer."""

from functools import partial

from django.conf import settings
from django.http import HttpRequest
from ninja import Router, Status

from core.bodies import NOT_JSON, NOT_JSON_TYPE, TOO_LARGE
from core.errors import ApiError
from core.throttles import ClientIPThrottle
from signup import idempotency, services
from signup.limits import LimitResult
from signup.schemas import (
    ERROR_RESPONSES,
    EmailIn,
    PendingOut,
    SignupIn,
    SignupPendingOut,
    VerifiedOut,
    VerifyIn,
)
from signup.verification_tokens import verification_token_for_key, verification_token_new


def code_limit_check(limit: LimitResult) -> None:
    """The 429 of every code request (resend, login code, reset) its limits hold back."""
    if not limit.allowed:
        raise ApiError(
            429,
            "rate_limited",
            "A code was asked for this address recently. Check your inbox, "
            f"or try again in {limit.retry_after} seconds.",
            headers={"Retry-After": str(limit.retry_after)},
        )


router = Router(tags=["signup"])

INVALID_CODE = "Invalid or expired code."

# OpenAPI only: what ERROR_RESPONSES cannot say. 429 and 503 always carry
# Retry-After (core.api, ninja's throttle check, the limits below).
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before asking again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    }
}


def _examples(**cases: tuple[str, object]) -> dict:
    """OpenAPI examples of one status's error bodies: {name: (code, detail)}."""
    values = {name: {"value": {"detail": d, "code": c}} for name, (c, d) in cases.items()}
    return {"content": {"application/json": {"examples": values}}}


THROTTLED = ("rate_limited", "Too many requests from your network. Try again in 42 seconds.")
FIELD_ERROR = {
    "type": "string_too_long",
    "loc": ["body", "email"],
    "msg": "String should have at most 254 characters",
}


def _error_docs(**per_status: dict) -> dict:
    """Every error answer's example (docs/api.md, Errors); per_status: s<status>=examples."""
    responses = {
        400: _examples(invalid_json=("invalid_json", NOT_JSON)),
        413: _examples(body_too_large=("body_too_large", TOO_LARGE)),
        415: _examples(unsupported_media_type=("unsupported_media_type", NOT_JSON_TYPE)),
        422: _examples(validation_error=("validation_error", [FIELD_ERROR])),
        429: _examples(rate_limited=THROTTLED),
        503: _examples(
            service_unavailable=("service_unavailable", "The service is briefly unavailable.")
        ),
    }
    for key, doc in per_status.items():
        responses[int(key[1:])] = doc
    for status in (429, 503):
        responses[status] = {**responses[status], "headers": RETRY_AFTER}
    return {"responses": responses}


# The common error answers' documentation, for routes with no answer of their own.
ERROR_HEADERS = _error_docs()

SIGNUP_DOCS = _error_docs(
    s422=_examples(
        validation_error=(
            "validation_error",
            [
                {
                    "type": "password_too_common",
                    "loc": ["body", "password"],
                    "msg": "Choose a stronger password: This password is too common.",
                }
            ],
        ),
        idempotency_key_reused=(
            "idempotency_key_reused",
            [
                {
                    "type": "idempotency_key_reused",
                    "loc": ["header", "Idempotency-Key"],
                    "msg": "This Idempotency-Key was already used with a different request "
                    "body. Use a new key for a new request.",
                }
            ],
        ),
    )
)
VERIFY_DOCS = _error_docs(
    s400=_examples(
        invalid_code=("invalid_code", INVALID_CODE), invalid_json=("invalid_json", NOT_JSON)
    ),
    s429=_examples(
        too_many_attempts=(
            "too_many_attempts",
            "Too many wrong codes for this address. "
            "Request a new code with /api/v1/signup/resend, then try again.",
        ),
        rate_limited=THROTTLED,
    ),
)
RESEND_DOCS = _error_docs(
    s429=_examples(
        rate_limited=(
            "rate_limited",
            "A code was asked for this address recently. Check your inbox, "
            "or try again in 42 seconds.",
        )
    )
)
# The view reads the header itself (request.headers), so that a malformed key
# is a 422 with its own message; this documents it.
IDEMPOTENCY_KEY = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "description": "Makes a retry safe: the same key with the same body within 24 hours "
    "answers what the first request answered and does nothing more; with another body, 422.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
}


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
    answer (the same token) and causes nothing more (no second code, no
    second email).
    """
    key = request.headers.get("Idempotency-Key")
    if key is None:
        token = verification_token_new()
        services.user_signup(
            email=payload.email,
            password=payload.password,
            full_name=payload.full_name,
            verification_token=token,
        )
        return Status(202, SignupPendingOut(email=payload.email, verification_token=token))

    if not idempotency.idempotency_key_valid(key):
        return _idempotency_error(
            "Idempotency-Key must be 1 to 255 printable ASCII characters.", "invalid"
        )
    # Derived, not stored: a replay recomputes it (signup.verification_tokens).
    token = verification_token_for_key(email=payload.email, key=key, password=payload.password)
    answer = SignupPendingOut(email=payload.email, verification_token=token)
    fingerprint = idempotency.request_fingerprint(payload.model_dump())
    record = idempotency.idempotency_lookup(key=key, email=payload.email)
    if record is None:
        try:
            services.user_signup(
                email=payload.email,
                password=payload.password,
                full_name=payload.full_name,
                verification_token=token,
                record_answer=partial(
                    idempotency.idempotency_record,
                    key=key,
                    email=payload.email,
                    fingerprint=fingerprint,
                    status_code=202,
                    response=answer.model_dump(exclude={"verification_token"}),
                ),
            )
            return Status(202, answer)
        except idempotency.IdempotencyReplayError:
            record = idempotency.idempotency_lookup(key=key, email=payload.email)
    if record is None or not idempotency.idempotency_matches(
        record, fingerprint=fingerprint, password=payload.password
    ):
        return _idempotency_error(
            "This Idempotency-Key was already used with a different request body. "
            "Use a new key for a new request.",
            "reused",
        )
    return Status(record.status_code, {**record.response, "verification_token": token})


def _idempotency_error(message: str, kind: str):
    code = f"idempotency_key_{kind}"
    error = {"type": code, "loc": ["header", "Idempotency-Key"], "msg": message}
    return Status(422, {"detail": [error], "code": code})


@router.post(
    "/verify",
    response={200: VerifiedOut, **ERROR_RESPONSES},
    throttle=ClientIPThrottle("signup-verify"),
    summary="Verify the emailed code",
    openapi_extra=VERIFY_DOCS,
)
def verify(request: HttpRequest, payload: VerifyIn):
    """200 on the right code; one 400 for every wrong, expired or used code and
    unknown address; 429 after 5 wrong codes for the address (any address)."""
    outcome = services.email_code_verify(
        email=payload.email, code=payload.code, verification_token=payload.verification_token
    )
    if outcome is services.VerifyOutcome.VERIFIED:
        return Status(200, VerifiedOut(email=payload.email))
    if outcome is services.VerifyOutcome.LOCKED:
        raise ApiError(
            429,
            "too_many_attempts",
            "Too many wrong codes for this address. "
            "Request a new code with /api/v1/signup/resend, then try again.",
            headers={"Retry-After": str(settings.SIGNUP_CODE_COOLDOWN_SECONDS)},
        )
    raise ApiError(400, "invalid_code", INVALID_CODE)


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
    code_limit_check(services.email_code_resend(email=payload.email))
    return Status(202, PendingOut(email=payload.email))
