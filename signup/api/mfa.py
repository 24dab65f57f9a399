"""/me/mfa: two-factor login with an authenticator app (TOTP) and recovery codes."""

from django.http import HttpRequest
from ninja import Router, Status

from signup.api.bearer import bearer
from signup.api.clients import request_proof
from signup.flows.mfa import (
    ALREADY_ENABLED,
    NOT_ENABLED,
    mfa_status,
    recovery_codes_renew,
    totp_confirm,
    totp_disable,
    totp_enrol,
)
from signup.schemas.common import (
    AUTHED_DOCS,
    AUTHED_ERRORS,
    BODY_ERRORS,
    RETRY_AFTER,
    ErrorOut,
    error_examples,
)
from signup.schemas.me import (
    MfaStatusOut,
    ReauthIn,
    RecoveryCodesOut,
    TotpConfirmIn,
    TotpEnrolOut,
)

router = Router(tags=["two-factor"], auth=bearer)

RETRY_DOCS = {**AUTHED_DOCS["responses"], 429: {"headers": RETRY_AFTER}}
ENROL_DOCS = {
    "responses": {
        **RETRY_DOCS,
        409: error_examples(mfa_already_enabled=("mfa_already_enabled", ALREADY_ENABLED)),
    }
}
RENEW_DOCS = {
    "responses": {
        **RETRY_DOCS,
        409: error_examples(mfa_not_enabled=("mfa_not_enabled", NOT_ENABLED)),
    }
}
ANSWERS = {429: ErrorOut, **BODY_ERRORS, **AUTHED_ERRORS}


@router.get("", response={200: MfaStatusOut, **AUTHED_ERRORS}, openapi_extra=AUTHED_DOCS)
def status(request: HttpRequest):
    """What is on, and how many recovery codes are left: one query."""
    found = mfa_status(user=request.auth.user)
    return Status(200, MfaStatusOut(totp=found.totp, recovery_codes_left=found.recovery_codes_left))


@router.post(
    "/totp",
    response={200: TotpEnrolOut, 409: ErrorOut, **ANSWERS},
    summary="Set up an authenticator app (re-authenticated); confirm it with a code",
    openapi_extra=ENROL_DOCS,
)
def totp_enrol_view(request: HttpRequest, payload: ReauthIn):
    """Nothing is on until POST /me/mfa/totp/confirm; a new call replaces a
    pending secret. 409 mfa_already_enabled when it is on."""
    enrolment = totp_enrol(user=request.auth.user, proof=request_proof(request, payload))
    return Status(
        200,
        TotpEnrolOut(
            secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri, qr_svg=enrolment.qr_svg
        ),
    )


@router.post(
    "/totp/confirm",
    response={200: RecoveryCodesOut, 409: ErrorOut, **ANSWERS},
    summary="Turn two-factor login on with the app's code; answers the recovery codes",
    openapi_extra=ENROL_DOCS,
)
def totp_confirm_view(request: HttpRequest, payload: TotpConfirmIn):
    """The recovery codes are shown this once. 400 invalid_code for a wrong
    code or nothing being set up; 429 after 5 wrong codes in 15 minutes."""
    codes = totp_confirm(user=request.auth.user, code=payload.code)
    return Status(200, RecoveryCodesOut(recovery_codes=codes))


@router.delete(
    "/totp",
    response={204: None, **ANSWERS},
    summary="Turn two-factor login off (re-authenticated, with mfa_code)",
    openapi_extra={"responses": RETRY_DOCS},
)
def totp_disable_view(request: HttpRequest, payload: ReauthIn):
    """The authenticator and the recovery codes are deleted; an email tells the user."""
    totp_disable(user=request.auth.user, proof=request_proof(request, payload))
    return Status(204, None)


@router.post(
    "/recovery-codes",
    response={200: RecoveryCodesOut, 409: ErrorOut, **ANSWERS},
    summary="A new set of recovery codes (re-authenticated, with mfa_code)",
    openapi_extra=RENEW_DOCS,
)
def recovery_codes_view(request: HttpRequest, payload: ReauthIn):
    """The older set stops working; 409 mfa_not_enabled when two-factor login is off."""
    codes = recovery_codes_renew(user=request.auth.user, proof=request_proof(request, payload))
    return Status(200, RecoveryCodesOut(recovery_codes=codes))
