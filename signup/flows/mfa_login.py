"""The second factor: checking one (a TOTP code or a recovery code), and the
second step of a login on an account with two-factor login on.

A right first factor (password, emailed login code, password reset) on such
an account gets an mfa_token instead of an access token
(mfa_challenge_issue); POST /api/v1/auth/mfa trades it with a second factor
for the access token (mfa_login). The first step does the same work for
accounts with and without two-factor login until the first factor is known
to be right: whether an account has it is read from the row the password
check already loaded (UserManager.get_by_natural_key joins it).

Every check of a second factor, here and in re-authentication, is one
attempt on the account's count (MFA_FAILURES_PER_ACCOUNT in
MFA_FAILURE_WINDOW_SECONDS, reserved before the check: parallel guesses
cannot pass it together; 429 past it). A TOTP code is used by one
conditional UPDATE of the device's last step and a recovery code by one
of its row: of two parallel uses of one code, one wins.
"""

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.errors import ApiError, rate_limited
from messaging.outbox import outbox_add_on_commit
from signup import limits
from signup.authenticator import (
    SecretUnreadableError,
    looks_like_totp,
    recovery_code_hash,
    secret_decrypt,
    totp_match,
)
from signup.messages import MFA_FAILURES_EMAIL, MFA_RECOVERY_USED_EMAIL, notice_time
from signup.models import AccessToken, MfaChallenge, RecoveryCode, TotpDevice, User
from signup.tokens import TOKEN_BYTES, Client, token_digest, token_issue

logger = logging.getLogger(__name__)

MFA = "mfa"  # the AddressCounter kind of wrong second factors, keyed by account
INVALID_SECOND_FACTOR = (
    "Wrong or already used code. Enter the current code from your authenticator app "
    "(each code works once), or one of your recovery codes."
)
CHALLENGE_GONE = (
    "This sign-in step expired or was already used. Log in again with your password "
    "or an emailed code."
)


@dataclass(frozen=True)
class LoginResult:
    """What a right first factor gets: an access token, or, with two-factor
    login on, an mfa_token for POST /api/v1/auth/mfa."""

    access_token: str | None = None
    token: AccessToken | None = None
    mfa_token: str | None = None


def totp_device(user: User) -> TotpDevice | None:
    """The user's authenticator, on or pending, or None; no query where it was
    loaded with the user (select_related("totp")), one otherwise."""
    try:
        return user.totp
    except TotpDevice.DoesNotExist:
        return None


def totp_on(user: User) -> bool:
    """Whether user has two-factor login on (see totp_device)."""
    device = totp_device(user)
    return device is not None and device.is_on


def totp_step_of(device: TotpDevice, code: str) -> int | None:
    """The time step code belongs to for device's secret, or None (wrong, or
    the secret is unreadable: no configured key decrypts it, logged)."""
    try:
        return totp_match(secret_decrypt(device.secret), code)
    except SecretUnreadableError:
        logger.error("mfa-check user=%s outcome=secret-unreadable", device.user_id)
        return None


def login_result(*, user: User, client: Client) -> LoginResult:
    """The answer to a right first factor: a token, or the second step.
    Call inside the transaction that records the first factor's success."""
    if totp_on(user):
        return LoginResult(mfa_token=mfa_challenge_issue(user=user))
    raw, token = token_issue(user=user, client=client)
    return LoginResult(access_token=raw, token=token)


def mfa_challenge_issue(*, user: User) -> str:
    """A new mfa_token for user: one INSERT; the plaintext is shown once."""
    raw = secrets.token_urlsafe(TOKEN_BYTES)
    now = timezone.now()
    MfaChallenge.objects.create(
        user=user,
        token_hash=token_digest(raw),
        created_at=now,
        expires_at=now + timedelta(seconds=settings.MFA_TOKEN_TTL_SECONDS),
    )
    logger.info("login user=%s outcome=mfa-required", user.pk)
    return raw


def mfa_login(
    *, mfa_token: str, code: str | None, recovery_code: str | None, client: Client
) -> tuple[str, AccessToken]:
    """An access token for a live mfa_token and a right second factor.

    400 invalid_code for an unknown, expired or used mfa_token, or a wrong
    or replayed code (the mfa_token stays usable until it expires: a typo
    does not end the login); 429 too_many_attempts past the account's count.

    The mfa_token is taken (one conditional UPDATE) before the second factor
    is checked and given back if it was wrong: of parallel requests with one
    mfa_token only one checks a code, so the others use up no recovery code.
    """
    now = timezone.now()
    challenge = (
        MfaChallenge.objects.select_related("user", "user__totp")
        .filter(
            token_hash=token_digest(mfa_token),
            used_at__isnull=True,
            expires_at__gt=now,
            user__is_active=True,
        )
        .first()
    )
    taken = challenge is not None and MfaChallenge.objects.filter(
        pk=challenge.pk, used_at__isnull=True
    ).update(used_at=now)
    if challenge is None or not taken:  # unknown, expired, used, or a parallel request has it
        raise ApiError(400, "invalid_code", CHALLENGE_GONE)
    user = challenge.user
    try:
        second_factor_check(user=user, code=code, recovery_code=recovery_code)
    except ApiError:
        MfaChallenge.objects.filter(pk=challenge.pk).update(used_at=None)  # try again
        raise
    raw, token = token_issue(user=user, client=client)
    logger.info("login user=%s outcome=token method=mfa", user.pk)
    return raw, token


def second_factor_check(
    *,
    user: User,
    code: str | None = None,
    recovery_code: str | None = None,
    refusal: str = "invalid_code",
) -> None:
    """Return if code (TOTP) or recovery_code is right for user, using it up;
    raise 400 refusal (wrong, replayed, used) or 429 (too many)."""
    hold = mfa_attempt_reserve(user=user)
    if recovery_code is not None:
        right = _recovery_code_use(user=user, code=recovery_code)
    elif code is not None:
        right = _totp_use(user=user, code=code)
    else:
        right = False
    if not right:  # the reservation stands: a wrong second factor
        logger.info("mfa-check user=%s outcome=invalid attempts=%s", user.pk, hold.count)
        if hold.count == settings.MFA_FAILURES_PER_ACCOUNT:  # once per window: tell the owner
            outbox_add_on_commit(
                user=user, kinds=[MFA_FAILURES_EMAIL], context={"at": notice_time()}
            )
        raise ApiError(400, refusal, INVALID_SECOND_FACTOR)
    mfa_failures_clear(user=user)


def second_factor_check_any(*, user: User, mfa_code: str, refusal: str = "invalid_code") -> None:
    """second_factor_check for one field that holds either kind (re-authentication)."""
    if looks_like_totp(mfa_code):
        second_factor_check(user=user, code=mfa_code, refusal=refusal)
    else:
        second_factor_check(user=user, recovery_code=mfa_code, refusal=refusal)


def mfa_attempt_reserve(*, user: User) -> limits.Hold:
    """Count one second-factor check for the account before it is made (one
    statement); 429 too_many_attempts past MFA_FAILURES_PER_ACCOUNT."""
    hold = limits.address_attempt_reserve(
        email=_account_key(user),
        kind=MFA,
        limit=settings.MFA_FAILURES_PER_ACCOUNT,
        window_seconds=settings.MFA_FAILURE_WINDOW_SECONDS,
    )
    if not hold.allowed:
        raise rate_limited(
            "Too many wrong two-factor codes for this account. Try again in "
            f"{hold.retry_after} seconds.",
            hold.retry_after,
            code="too_many_attempts",
        )
    return hold


def mfa_failures_clear(*, user: User) -> None:
    """A right second factor: no failures left (one UPDATE)."""
    limits.address_failures_reset(email=_account_key(user), kind=MFA)


def _account_key(user: User) -> str:
    """The count is the account's, whatever its address (it may change)."""
    return f"user:{user.pk}"


def _totp_use(*, user: User, code: str) -> bool:
    """Right and not used before: the device's last step moves to the code's
    in one conditional UPDATE (a replay, or a parallel use that lost, finds
    it there already)."""
    device = totp_device(user)
    if device is None or not device.is_on:
        return False
    step = totp_step_of(device, code)
    if step is None:
        return False
    return bool(TotpDevice.objects.filter(pk=device.pk, last_step__lt=step).update(last_step=step))


def _recovery_code_use(*, user: User, code: str) -> bool:
    """Burn the code (one conditional UPDATE); the user is told how many remain."""
    if len(code) > 64:
        return False
    with transaction.atomic():
        used = RecoveryCode.objects.filter(
            user=user, code_hash=recovery_code_hash(code, user_id=user.pk), used_at__isnull=True
        ).update(used_at=timezone.now())
        if not used:
            return False
        left = RecoveryCode.objects.filter(user=user, used_at__isnull=True).count()
        context = {"left": left, "at": notice_time()}
        outbox_add_on_commit(user=user, kinds=[MFA_RECOVERY_USED_EMAIL], context=context)
    logger.info("mfa-check user=%s outcome=recovery-code left=%s", user.pk, left)
    return True


def mfa_challenges_purge() -> int:
    """Delete mfa_tokens past their lifetime, used or not (a periodic job:
    WORKER_PERIODIC_JOBS)."""
    cutoff = timezone.now() - timedelta(seconds=settings.MFA_TOKEN_TTL_SECONDS)
    deleted, _ = MfaChallenge.objects.filter(created_at__lt=cutoff).delete()
    return deleted
