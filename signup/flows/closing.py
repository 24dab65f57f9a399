"""Closing an account: by its owner (DELETE /api/v1/me, re-authenticated) or
by staff (the admin's "Close account" action, no re-authentication).

Refused (409 wallet_not_empty) while the wallet balance is not zero: money
is the payments app's to move, never lost with an account. The balance is
read with the wallet row locked (SELECT ... FOR UPDATE), so a deposit in
flight is waited for and seen, and none can land once the check passed.

Otherwise one transaction: the account is deactivated, every token revoked,
the personal data erased (the name; the address becomes a tombstone no one
can sign up with or mail, so the address is free for a new account), the
password made unusable, pending signups, a pending email change, every
code, and two-factor login's secret and recovery codes deleted. What the
business must keep stays: the user id and the wallet row with its zero
balance. Two outbox rows: a goodbye email to the old address (carried in
the rows' context: the row's user has the tombstone by then) and a notice
to every admin (one INSERT by the worker).
"""

import logging

from django.contrib.auth.hashers import make_password
from django.db import transaction

from core.errors import ApiError
from messaging.outbox import outbox_add_on_commit
from signup.flows.reauth import Proof, reauthenticate
from signup.messages import CLOSED_EMAIL, CLOSED_NOTICE, notice_time
from signup.models import (
    EmailChange,
    PendingSignup,
    Profile,
    RecoveryCode,
    TotpDevice,
    User,
    VerificationCode,
    Wallet,
)
from signup.tokens import user_tokens_revoke

logger = logging.getLogger(__name__)

WALLET_NOT_EMPTY = (
    "Your wallet's balance is not zero. Withdraw or transfer the money it holds (or settle "
    "what it owes) until the balance is 0.00, then close the account."
)


def tombstone(user_id: int) -> str:
    """The closed account's address: unique (Lower(email) index) and never deliverable
    (.invalid is reserved, RFC 2606; signup refuses it, email-validator's rule)."""
    return f"deleted-{user_id}@closed.invalid"


def account_close(*, user: User, proof: Proof) -> None:
    """The owner closes the account, re-authenticated by password or a fresh login
    code (400 invalid_credentials, a failed login; 429 past the limits), then
    user_close (409 wallet_not_empty). The Argon2id check runs before the
    transaction, so no row stays locked through it."""
    reauthenticate(user=user, proof=proof)
    user_close(user=user)


@transaction.atomic
def user_close(*, user: User, by_staff: bool = False) -> bool:
    """Close user's account (see the module); False if it already was closed.

    Raises ApiError 409 wallet_not_empty, with nothing changed, while the
    balance is not zero. Statements are the same whatever the number of
    tokens, codes or admins.
    """
    # Codes and the pending email change first, then the user: the order the
    # code flows lock in (a code row, then a KEY SHARE on the user as they write
    # a token), so a login by code in flight cannot deadlock with this.
    VerificationCode.objects.filter(user_id=user.pk).delete()
    EmailChange.objects.filter(user_id=user.pk).delete()
    # The wallet and the user, both rows locked, in one statement.
    wallet = Wallet.objects.select_for_update().select_related("user").get(user_id=user.pk)
    closed_as = tombstone(user.pk)
    if wallet.user.email == closed_as:
        return False
    if wallet.balance != 0:
        logger.info("account user=%s outcome=close-refused reason=wallet", user.pk)
        raise ApiError(409, "wallet_not_empty", WALLET_NOT_EMPTY)
    old_email = wallet.user.email
    unusable = make_password(None)
    User.objects.filter(pk=user.pk).update(is_active=False, email=closed_as, password=unusable)
    Profile.objects.filter(user_id=user.pk).update(full_name="")
    user_tokens_revoke(user=user)
    PendingSignup.objects.filter(user_id=user.pk).delete()
    # Two-factor login's secret and recovery codes: nothing of them is the
    # business's to keep (its unfinished logins went with the tokens).
    TotpDevice.objects.filter(user_id=user.pk).delete()
    RecoveryCode.objects.filter(user_id=user.pk).delete()
    context = {
        "email": old_email,
        "at": notice_time(),
        "by": "staff" if by_staff else "owner",
    }
    outbox_add_on_commit(user=user, kinds=[CLOSED_EMAIL, CLOSED_NOTICE], context=context)
    user.email, user.is_active, user.password = closed_as, False, unusable
    logger.info("account user=%s outcome=closed by=%s", user.pk, context["by"])
    return True
