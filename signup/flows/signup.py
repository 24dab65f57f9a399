"""Sign up: create the account, or quietly email the owner of an existing one.

No signals: a signup's whole cost is the password hash plus the statements
in user_signup. Email and notifications are outbox rows, delivered by workers.
"""

import logging
from collections.abc import Callable
from functools import partial

from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, transaction

from messaging.outbox import outbox_add_on_commit
from signup.flows.verification import pending_signup_add
from signup.limits import address_code_request
from signup.messages import ANNOUNCE_NEW_USER, SIGNUP_NOTICE_EMAIL, VERIFICATION_EMAIL
from signup.models import Profile, User, Wallet
from signup.selectors import user_by_email

logger = logging.getLogger(__name__)


def user_signup(*, email: str, password: str, verification_token: str, full_name: str = "") -> None:
    """Create the account, or quietly email the owner of an existing one.

    The password is hashed on every path (equal work), and the caller gets
    the same answer either way. email must already be normalized.
    """
    user_signup_hashed(
        email=email,
        password_hash=make_password(password),
        verification_token=verification_token,
        full_name=full_name,
    )


def user_signup_hashed(
    *, email: str, password_hash: str, verification_token: str, full_name: str = ""
) -> None:
    """user_signup with the password's Argon2id hash made by the caller (the
    Idempotency-Key record keeps it: signup.idempotency.signup_once).

    Every path records this signup under verification_token (the client's,
    see signup.flows.verification): only a verify that presents it gives the
    account this password. Inside a caller's transaction the new account's
    block is a savepoint, and a taken address goes on in that transaction.
    """
    pending = partial(
        pending_signup_add,
        token=verification_token,
        password_hash=password_hash,
        full_name=full_name,
    )
    try:
        with transaction.atomic():
            user = user_create(email=email, password_hash=password_hash, full_name=full_name)
            pending(user_id=user.pk)
            address_code_request(email=email, force=True)
            outbox_add_on_commit(user=user, kinds=[VERIFICATION_EMAIL, ANNOUNCE_NEW_USER])
    except IntegrityError:
        # Taken, possibly by a concurrent signup that just committed.
        _signup_existing(email=email, record_pending=pending)
        return
    logger.info("signup user=%s outcome=created", user.pk)


@transaction.atomic
def _signup_existing(*, email: str, record_pending: Callable[..., None]) -> None:
    """Same 202 outside: a fresh code if unverified, a notice if verified.

    This signup is recorded for any existing account (one INSERT: equal
    work; it can only ever complete an unverified one's verification), and
    the account's password stays as it is: it changes only when a verify
    presents this signup's token. Subject to the per-address limits, silently.
    """
    user = user_by_email(email=email)
    if user is None:
        return
    record_pending(user_id=user.pk)
    if not user.is_active:
        return
    if not address_code_request(email=email).send:
        logger.info("signup user=%s outcome=existing-limited", user.pk)
        return
    kind = SIGNUP_NOTICE_EMAIL if user.is_verified else VERIFICATION_EMAIL
    outbox_add_on_commit(user=user, kinds=[kind])
    logger.info("signup user=%s outcome=existing kind=%s", user.pk, kind)


@transaction.atomic(savepoint=False)
def user_create(
    *,
    email: str,
    password: str | None = None,
    password_hash: str | None = None,
    full_name: str = "",
    **fields,
) -> User:
    """The one way to create a user: the user, its profile and its wallet, atomically.

    Signup, UserManager.create_user (createsuperuser, the shell) and the admin
    all call it. Give password (hashed here), password_hash (hashed already,
    e.g. outside the caller's transaction), or neither (an unusable password).
    No savepoint: inside signup's transaction it costs exactly its 3 INSERTs,
    and an IntegrityError (the address is taken) aborts the caller's block.
    """
    user = User(email=User.objects.normalize_email(email), **fields)
    if password_hash is not None:
        user.password = password_hash
    else:
        user.set_password(password)
    user.save(force_insert=True)
    Profile.objects.create(user=user, full_name=full_name)
    Wallet.objects.create(user=user)
    return user
