"""The emails and notifications of accounts after signup, registered by outbox kind.

Code emails make their code when they are sent (like the verification
email: see README, "Why the worker makes the code"), and send nothing when
the account is no longer eligible by then.
"""

from django.conf import settings

from messaging.kinds import email_kind, notification_kind
from messaging.models import Notification
from messaging.senders import render_email
from signup import accounts
from signup.models import VerificationCode
from signup.selectors import admin_ids
from signup.services import verification_code_issue


def _code_email(user, *, template: str, purpose: str):
    code = verification_code_issue(user=user, purpose=purpose)
    return render_email(
        template,
        to=user.email,
        context={"code": code, "minutes": settings.SIGNUP_CODE_TTL_SECONDS // 60},
    )


@email_kind(accounts.LOGIN_CODE_EMAIL)
def login_code_email(user):
    if not (user.is_active and user.is_verified):
        return None
    return _code_email(user, template="login_code", purpose=VerificationCode.Purpose.LOGIN)


@email_kind(accounts.RESET_CODE_EMAIL)
def password_reset_email(user):
    if not user.is_active:
        return None
    return _code_email(user, template="password_reset", purpose=VerificationCode.Purpose.RESET)


@email_kind(accounts.DEACTIVATED_EMAIL)
def deactivated_email(user):
    return render_email("account_deactivated", to=user.email, context={"email": user.email})


@email_kind(accounts.REACTIVATED_EMAIL)
def reactivated_email(user):
    return render_email("account_reactivated", to=user.email, context={"email": user.email})


def _status_notices(user, *, state: str) -> list[Notification]:
    """One for the user, one for every other active admin: one bulk INSERT by the worker."""
    mine = Notification(
        user_id=user.pk,
        kind=f"account_{state}",
        title=f"Your account was {state}",
        body=(
            "Your Payshift account was deactivated by our staff. Contact support if this is a "
            "mistake."
            if state == "deactivated"
            else "Your Payshift account is active again. You can log in."
        ),
    )
    notices = [
        Notification(
            user_id=admin_id,
            kind=f"account_{state}",
            title=f"Account {state}",
            body=f"{user.email} was {state}.",
        )
        for admin_id in admin_ids(exclude=user.pk)
    ]
    return [mine, *notices]


@notification_kind(accounts.DEACTIVATED_NOTICE)
def deactivated_notices(user) -> list[Notification]:
    return _status_notices(user, state="deactivated")


@notification_kind(accounts.REACTIVATED_NOTICE)
def reactivated_notices(user) -> list[Notification]:
    return _status_notices(user, state="reactivated")
