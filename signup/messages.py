"""Every outbox kind the signup app owns: its name, its handler, its wording.

One home per kind: the constant a flow emits, the handler the worker runs
(messaging.kinds: handler(user, context)), and its templates beside this
module (templates/signup/email/<kind>/{subject.txt, body.txt, body.html}).
Adding a kind touches this module, its templates, and the flow that emits
it; nothing in messaging/.

Code emails make their code when they are sent (see docs/architecture.md,
"Why the worker makes the code"), and send nothing when the account is no
longer eligible by then: the same rule (CODE_EMAILS) the code check asks.
"""

from collections.abc import Callable
from typing import NamedTuple

from django.conf import settings

from messaging.kinds import email_kind, notification_kind
from messaging.models import Notification
from messaging.senders import render_email
from signup.codes import verification_code_issue
from signup.models import User, VerificationCode
from signup.selectors import admin_ids

Purpose = VerificationCode.Purpose

VERIFICATION_EMAIL = "signup.verification"
SIGNUP_NOTICE_EMAIL = "signup.attempt_notice"
ANNOUNCE_NEW_USER = "announce_new_user"
LOGIN_CODE_EMAIL = "accounts.login_code"
RESET_CODE_EMAIL = "accounts.password_reset"
DEACTIVATED_EMAIL = "accounts.deactivated.email"
DEACTIVATED_NOTICE = "accounts.deactivated.notify"
REACTIVATED_EMAIL = "accounts.reactivated.email"
REACTIVATED_NOTICE = "accounts.reactivated.notify"

WELCOME_BODY = (
    "Your Payshift account has been created. If you have not verified your email "
    "address yet, enter the code we emailed you (you can ask for a new one)."
)


class CodeEmail(NamedTuple):
    kind: str
    template: str
    eligible: Callable[[User], bool]  # may this account get (and use) such a code?


CODE_EMAILS: dict[str, CodeEmail] = {
    Purpose.VERIFY_EMAIL: CodeEmail(
        VERIFICATION_EMAIL, "verification", lambda user: user.is_active and not user.is_verified
    ),
    Purpose.LOGIN: CodeEmail(
        LOGIN_CODE_EMAIL, "login_code", lambda user: user.is_active and user.is_verified
    ),
    Purpose.RESET: CodeEmail(RESET_CODE_EMAIL, "password_reset", lambda user: user.is_active),
}


def _email(template: str, user: User, **context):
    return render_email(f"signup/email/{template}", to=user.email, context=context)


def _code_email(purpose: str):
    """The handler of purpose's code email: a fresh code, if still eligible."""
    kind, template, eligible = CODE_EMAILS[purpose]

    @email_kind(kind)
    def handler(user: User, context: dict):
        if not eligible(user):  # verified or deactivated meanwhile: a code would be noise
            return None
        code = verification_code_issue(user=user, purpose=purpose)
        return _email(template, user, code=code, minutes=settings.SIGNUP_CODE_TTL_SECONDS // 60)

    return handler


verification_email = _code_email(Purpose.VERIFY_EMAIL)
login_code_email = _code_email(Purpose.LOGIN)
password_reset_email = _code_email(Purpose.RESET)


@email_kind(SIGNUP_NOTICE_EMAIL)
def signup_attempt_notice(user: User, context: dict):
    return _email("signup_attempt_notice", user, email=user.email)


@email_kind(DEACTIVATED_EMAIL)
def deactivated_email(user: User, context: dict):
    return _email("account_deactivated", user, email=user.email)


@email_kind(REACTIVATED_EMAIL)
def reactivated_email(user: User, context: dict):
    return _email("account_reactivated", user, email=user.email)


def _admin_notices(user: User, *, kind: str, title: str, body: str, dedupe_key: str = ""):
    """One for every other active admin: the worker writes them with one bulk INSERT."""
    return [
        Notification(user_id=admin_id, kind=kind, title=title, body=body, dedupe_key=dedupe_key)
        for admin_id in admin_ids(exclude=user.pk)
    ]


@notification_kind(ANNOUNCE_NEW_USER)
def new_user_announcement(user: User, context: dict) -> list[Notification]:
    """A welcome for the new user and a notice for every active admin."""
    key = f"new_user:{user.pk}"
    welcome = Notification(
        user_id=user.pk,
        kind="welcome",
        title="Welcome to Payshift",
        # Stored and read later, maybe after the user verified: no claim
        # about the address's state, so it stays true whenever it is read.
        body=WELCOME_BODY,
        dedupe_key=key,
    )
    notices = _admin_notices(
        user, kind="new_user", title="New signup", body=f"{user.email} signed up.", dedupe_key=key
    )
    return [welcome, *notices]


def _status_notices(user: User, *, state: str) -> list[Notification]:
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
    notices = _admin_notices(
        user, kind=f"account_{state}", title=f"Account {state}", body=f"{user.email} was {state}."
    )
    return [mine, *notices]


@notification_kind(DEACTIVATED_NOTICE)
def deactivated_notices(user: User, context: dict) -> list[Notification]:
    return _status_notices(user, state="deactivated")


@notification_kind(REACTIVATED_NOTICE)
def reactivated_notices(user: User, context: dict) -> list[Notification]:
    return _status_notices(user, state="reactivated")
