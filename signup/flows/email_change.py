"""Email change: a signed-in user moves the account to a new address, which
proves itself with a code sent to it.

The request (re-authenticated) answers the same whether the new address is
free, taken or the user's own: it runs the same statements on every path
(one lookup of the address, one INSERT of two outbox rows), and the worker
mails the new address a code, or, where it already has an account, a notice
that someone tried to move an account to it. The current address is told
at once, and again when the change is done. The pending change (one per
user) dies when it expires, when another change is asked, on a password
change or reset, and when the new address gets an account meanwhile (the
confirm finds it taken: the "unexpired email change" pre-hijacking variant).
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.errors import ApiError
from messaging.outbox import outbox_add_on_commit
from signup.codes import codes_kill_for_address
from signup.flows.codes import CodeCheck, address_code_check, code_refused, code_request_refused
from signup.flows.reauth import Proof, reauthenticate
from signup.limits import address_code_ask
from signup.messages import (
    EMAIL_CHANGE_ASKED,
    EMAIL_CHANGE_CODE,
    EMAIL_CHANGE_TAKEN,
    EMAIL_CHANGED,
    notice_time,
)
from signup.models import AccessToken, EmailChange, User, VerificationCode
from signup.selectors import user_by_email
from signup.tokens import user_tokens_revoke

logger = logging.getLogger(__name__)
PURPOSE = VerificationCode.Purpose.EMAIL_CHANGE


def email_change_request(*, user: User, new_email: str, proof: Proof) -> None:
    """Ask to move user to new_email (normalized): the same work for a free,
    a taken and the user's own address. Raises 400 (re-authentication) or 429
    (the purpose's code limits on the current address)."""
    reauthenticate(user=user, proof=proof)
    now = timezone.now()
    with transaction.atomic():
        limit = address_code_ask(email=user.email, purpose=PURPOSE)
        if not limit.allowed:
            raise code_request_refused(limit)
        taken = user_by_email(email=new_email) is not None
        # An earlier request's code dies: it proved another address.
        codes_kill_for_address(email=user.email, purpose=PURPOSE, now=now)
        expires_at = now + timedelta(seconds=settings.EMAIL_CHANGE_TTL_SECONDS)
        EmailChange.objects.bulk_create(  # one upsert: a new request replaces the pending one
            [EmailChange(user=user, new_email=new_email, created_at=now, expires_at=expires_at)],
            update_conflicts=True,
            unique_fields=["user"],
            update_fields=["new_email", "created_at", "expires_at"],
        )
        # One INSERT for both rows: the notice to the current address, and the
        # code (or, to an address that has an account, a notice) to the new one.
        outbox_add_on_commit(
            user=user,
            kinds=[EMAIL_CHANGE_ASKED, EMAIL_CHANGE_TAKEN if taken else EMAIL_CHANGE_CODE],
            context={"email": user.email, "new_email": new_email, "at": notice_time()},
        )
    logger.info("email-change user=%s outcome=asked", user.pk)


def email_change_confirm(*, token: AccessToken, code: str) -> User:
    """Move token's user to the pending new address with the code sent there.

    One 400 invalid_code for a wrong, expired or used code, no pending
    change, or a new address taken meanwhile (the change then dies); 429
    after 5 wrong codes. Other sessions end; the old address is told.
    """
    user = token.user
    with transaction.atomic():
        outcome = _confirm(user=user, code=code)
        if isinstance(outcome, str):
            old = user.email
            user.email = outcome
            user_tokens_revoke(user=user, keep=token)
            context = {"email": old, "new_email": outcome, "at": notice_time()}
            outbox_add_on_commit(user=user, kinds=[EMAIL_CHANGED], context=context)
    if not isinstance(outcome, str):  # after the commit: the wrong attempt is counted
        raise outcome
    logger.info("email-change user=%s outcome=done", user.pk)
    return user


def _confirm(*, user: User, code: str) -> str | ApiError:
    """The new address, moved to; or the refusal to raise after the commit."""
    checked = address_code_check(email=user.email, code=code, purpose=PURPOSE)
    if isinstance(checked, CodeCheck):
        return code_refused(checked, purpose=PURPOSE)
    pending = EmailChange.objects.select_for_update().filter(user=user).first()
    if pending is None or pending.expires_at <= timezone.now():
        return code_refused(CodeCheck.INVALID, purpose=PURPOSE)
    new_email = pending.new_email
    pending.delete()
    try:
        with transaction.atomic():  # the Lower(email) unique index decides a race
            User.objects.filter(pk=user.pk).update(email=new_email)
    except IntegrityError:
        logger.info("email-change user=%s outcome=taken-meanwhile", user.pk)
        return code_refused(CodeCheck.INVALID, purpose=PURPOSE)
    return new_email


def email_change_cancel(*, user: User) -> None:
    """A pending change dies (password changed or reset), and its live codes:
    two statements, whether or not there was one."""
    EmailChange.objects.filter(user=user).delete()
    codes_kill_for_address(email=user.email, purpose=PURPOSE, now=timezone.now())
