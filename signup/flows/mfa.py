"""Two-factor login's self-service: turn an authenticator app (TOTP) on,
see what is on, make new recovery codes, turn it off; and staff's reset for
a user who lost both the app and every recovery code.

Turning it on takes two steps: POST /me/mfa/totp (re-authenticated) makes
a secret, stored encrypted and pending; POST /me/mfa/totp/confirm with a
code from the app turns it on and answers MFA_RECOVERY_CODES recovery
codes, shown this once (only their keyed hashes are kept). A new enrolment
replaces a pending one, never one that is on. Turning it off and a new set
of recovery codes need the second factor too (re-authentication's mfa_code).
Every change is told to the user by email, through the outbox.
"""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from core.errors import ApiError
from messaging.outbox import outbox_add_on_commit
from signup.authenticator import (
    recovery_code_hash,
    recovery_code_new,
    secret_encrypt,
    totp_qr_svg,
    totp_secret_new,
    totp_uri,
)
from signup.flows.mfa_login import (
    INVALID_SECOND_FACTOR,
    mfa_attempt_reserve,
    mfa_failures_clear,
    totp_device,
    totp_on,
    totp_step_of,
)
from signup.flows.reauth import Proof, reauthenticate
from signup.messages import (
    MFA_DISABLED_EMAIL,
    MFA_ENABLED_EMAIL,
    MFA_RECOVERY_NEW_EMAIL,
    notice_time,
)
from signup.models import RecoveryCode, TotpDevice, User

logger = logging.getLogger(__name__)

ALREADY_ENABLED = (
    "Two-factor login is already on for this account. To move it to another app, "
    "turn it off (DELETE /api/v1/me/mfa/totp), then set it up again."
)
NOT_ENABLED = (
    "Two-factor login is off for this account: turn it on first (POST /api/v1/me/mfa/totp)."
)
NO_ENROLMENT = (
    "No authenticator app is being set up: start with POST /api/v1/me/mfa/totp, "
    "add the secret to the app, then send the code it shows."
)


@dataclass(frozen=True)
class Enrolment:
    secret: str  # base32: shown to the user this once, stored only encrypted
    otpauth_uri: str
    qr_svg: str


@dataclass(frozen=True)
class MfaStatus:
    totp: bool
    recovery_codes_left: int


def mfa_status(*, user: User) -> MfaStatus:
    """What is on and how many recovery codes are left: one query."""
    found = User.objects.filter(pk=user.pk).aggregate(
        on=Count("totp", filter=Q(totp__confirmed_at__isnull=False), distinct=True),
        left=Count("recovery_codes", filter=Q(recovery_codes__used_at__isnull=True)),
    )
    on = bool(found["on"])
    return MfaStatus(totp=on, recovery_codes_left=found["left"] if on else 0)


def totp_enrol(*, user: User, proof: Proof) -> Enrolment:
    """A new secret for the user's app, pending until confirmed (409 when
    two-factor login is already on; 400/429 re-authentication)."""
    if totp_on(user):
        raise ApiError(409, "mfa_already_enabled", ALREADY_ENABLED)
    reauthenticate(user=user, proof=proof)
    secret = totp_secret_new()
    stored = secret_encrypt(secret)
    now = timezone.now()
    # Replace a pending enrolment, never a confirmed one (the condition holds
    # under a parallel confirm: its row is no longer pending).
    replaced = TotpDevice.objects.filter(user=user, confirmed_at__isnull=True).update(
        secret=stored, created_at=now, last_step=0
    )
    if not replaced:
        try:
            with transaction.atomic():
                TotpDevice.objects.create(user=user, secret=stored, created_at=now)
        except IntegrityError:  # confirmed meanwhile
            raise ApiError(409, "mfa_already_enabled", ALREADY_ENABLED) from None
    logger.info("mfa-enrol user=%s outcome=pending", user.pk)
    uri = totp_uri(secret, account=user.email)
    return Enrolment(secret=secret, otpauth_uri=uri, qr_svg=totp_qr_svg(uri))


def totp_confirm(*, user: User, code: str) -> list[str]:
    """Turn two-factor login on with a code from the app; the recovery codes.

    400 invalid_code for a wrong code or no pending enrolment (counted as a
    wrong second factor: 429 past the account's limit); 409 when it is on.
    """
    device = totp_device(user)  # joined by the token lookup
    if device is not None and device.is_on:
        raise ApiError(409, "mfa_already_enabled", ALREADY_ENABLED)
    mfa_attempt_reserve(user=user)
    if device is None:
        raise ApiError(400, "invalid_code", NO_ENROLMENT)
    step = totp_step_of(device, code)
    if step is None:
        raise ApiError(400, "invalid_code", INVALID_SECOND_FACTOR)
    with transaction.atomic():
        now = timezone.now()
        # The secret the code was checked against: a parallel enrolment may
        # have replaced it (then the code proves nothing about the new one).
        if not TotpDevice.objects.filter(
            pk=device.pk, confirmed_at__isnull=True, secret=device.secret
        ).update(confirmed_at=now, last_step=step):
            if TotpDevice.objects.filter(user=user, confirmed_at__isnull=False).exists():
                raise ApiError(409, "mfa_already_enabled", ALREADY_ENABLED)
            raise ApiError(400, "invalid_code", INVALID_SECOND_FACTOR)
        codes = _recovery_codes_replace(user=user)
        outbox_add_on_commit(user=user, kinds=[MFA_ENABLED_EMAIL], context={"at": notice_time()})
    mfa_failures_clear(user=user)
    logger.info("mfa-enrol user=%s outcome=on", user.pk)
    return codes


def totp_disable(*, user: User, proof: Proof) -> None:
    """Turn two-factor login off (re-authenticated with the second factor)."""
    reauthenticate(user=user, proof=proof)
    if mfa_remove(user=user):
        logger.info("mfa-disable user=%s by=user", user.pk)


def recovery_codes_renew(*, user: User, proof: Proof) -> list[str]:
    """A fresh set of recovery codes; the older set stops working (409 when
    two-factor login is off)."""
    if not totp_on(user):
        raise ApiError(409, "mfa_not_enabled", NOT_ENABLED)
    reauthenticate(user=user, proof=proof)
    with transaction.atomic():
        codes = _recovery_codes_replace(user=user)
        outbox_add_on_commit(
            user=user, kinds=[MFA_RECOVERY_NEW_EMAIL], context={"at": notice_time()}
        )
    logger.info("mfa-recovery-codes user=%s outcome=renewed", user.pk)
    return codes


@transaction.atomic
def mfa_remove(*, user: User, by_staff: bool = False) -> bool:
    """Delete the user's authenticator and recovery codes; tell the user when
    two-factor login was on. False if it was not."""
    on = TotpDevice.objects.filter(user=user, confirmed_at__isnull=False).exists()
    TotpDevice.objects.filter(user=user).delete()
    RecoveryCode.objects.filter(user=user).delete()
    if on:
        context = {"at": notice_time(), "by": "staff" if by_staff else "user"}
        outbox_add_on_commit(user=user, kinds=[MFA_DISABLED_EMAIL], context=context)
    return on


def mfa_reset_by_staff(*, user: User) -> bool:
    """Staff switch two-factor login off for a user who lost the app and every
    recovery code (the admin's "Reset two-factor login"); the user is told."""
    removed = mfa_remove(user=user, by_staff=True)
    logger.info("mfa-disable user=%s by=staff outcome=%s", user.pk, "done" if removed else "none")
    return removed


def _recovery_codes_replace(*, user: User) -> list[str]:
    """A new set (one DELETE, one INSERT); the plaintexts, shown once."""
    codes = [recovery_code_new() for _ in range(settings.MFA_RECOVERY_CODES)]
    RecoveryCode.objects.filter(user=user).delete()
    RecoveryCode.objects.bulk_create(
        [RecoveryCode(user=user, code_hash=recovery_code_hash(c, user_id=user.pk)) for c in codes]
    )
    return codes
