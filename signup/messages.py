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
from django.utils import timezone

from messaging.kinds import Copies, Notices, email_kind, notification_kind
from messaging.models import Notification
from messaging.senders import render_email
from signup.codes import verification_code_issue
from signup.models import EmailChange, User, VerificationCode
from signup.selectors import admins

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
PASSWORD_CHANGED_EMAIL = "accounts.password_changed"  # noqa: S105 (a kind name, not a secret)
# Email change: each row's context holds the current address ("email"), the
# new one ("new_email") and the time; each handler writes to the one it is for.
EMAIL_CHANGE_CODE = "accounts.email_change.code"
EMAIL_CHANGE_TAKEN = "accounts.email_change.taken"
EMAIL_CHANGE_ASKED = "accounts.email_change.asked"
EMAIL_CHANGED = "accounts.email_change.done"
# Account closed: context "email" is the old address (the row's user carries
# the tombstone by then) and "at" the time.
CLOSED_EMAIL = "accounts.closed.email"
CLOSED_NOTICE = "accounts.closed.notify"
# Two-factor login: context "at" (the time), "by" ("user" or "staff") for
# off, "left" (recovery codes left) for a recovery code used. Never a secret.
MFA_ENABLED_EMAIL = "accounts.mfa.enabled"
MFA_DISABLED_EMAIL = "accounts.mfa.disabled"
MFA_RECOVERY_USED_EMAIL = "accounts.mfa.recovery_code_used"
MFA_RECOVERY_NEW_EMAIL = "accounts.mfa.recovery_codes_new"
MFA_FAILURES_EMAIL = "accounts.mfa.failures"  # the account's wrong second factors hit the limit

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


def notice_time() -> str:
    """Now, as a notice states when something happened (UTC, to the minute):
    the flow writes it into the outbox row's context, so a retry says the same."""
    return timezone.now().strftime("%Y-%m-%d %H:%M")


def _email(template: str, to: User | str, **context):
    """The email of template to a user (their address) or to an address."""
    address = to if isinstance(to, str) else to.email
    return render_email(f"signup/email/{template}", to=address, context=context)


def _notice(template: str, user: User, context: dict, **extra):
    """A notice to the user's address: what happened, and when (context["at"],
    written by the flow, so a retry says the same)."""
    return _email(template, user, email=user.email, at=context.get("at", "recently"), **extra)


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


@email_kind(EMAIL_CHANGE_CODE)
def email_change_code(user: User, context: dict):
    """A code to the new address, while the user's pending change to it lives."""
    pending = EmailChange.objects.filter(user=user, new_email=context["new_email"]).first()
    if not user.is_active or pending is None or pending.expires_at <= timezone.now():
        return None  # replaced, confirmed, or ended meanwhile: a code would be noise
    code = verification_code_issue(user=user, purpose=Purpose.EMAIL_CHANGE)
    minutes = settings.SIGNUP_CODE_TTL_SECONDS // 60
    return _email("email_change_code", context["new_email"], code=code, minutes=minutes)


@email_kind(EMAIL_CHANGE_TAKEN)
def email_change_taken(user: User, context: dict):
    """To a new address that already has an account (not the user's own): nothing moved."""
    if context["new_email"].lower() == context["email"].lower():
        return None
    return _email("email_change_taken", context["new_email"], email=context["new_email"])


@email_kind(EMAIL_CHANGE_ASKED)
def email_change_asked(user: User, context: dict):
    return _email("email_change_asked", context["email"], **context)


@email_kind(EMAIL_CHANGED)
def email_changed(user: User, context: dict):
    return _email("email_changed", context["email"], **context)


@email_kind(PASSWORD_CHANGED_EMAIL)
def password_changed_email(user: User, context: dict):
    """When (context["at"], written by the flow) and how to recover if it was not them."""
    return _notice("password_changed", user, context)


@email_kind(DEACTIVATED_EMAIL)
def deactivated_email(user: User, context: dict):
    return _email("account_deactivated", user, email=user.email)


@email_kind(REACTIVATED_EMAIL)
def reactivated_email(user: User, context: dict):
    return _email("account_reactivated", user, email=user.email)


def _admin_notices(user: User, *, kind: str, title: str, body: str, dedupe_key: str = "") -> Copies:
    """One for every other active admin: the worker's INSERT selects them from
    the users, in the statement that writes the kind's other notices."""
    return Copies(admins(exclude=user.pk), kind=kind, title=title, body=body, dedupe_key=dedupe_key)


@notification_kind(ANNOUNCE_NEW_USER)
def new_user_announcement(user: User, context: dict) -> Notices:
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
    return [welcome, notices]


def _status_notices(user: User, *, state: str) -> Notices:
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
    return [mine, notices]


@notification_kind(DEACTIVATED_NOTICE)
def deactivated_notices(user: User, context: dict) -> Notices:
    return _status_notices(user, state="deactivated")


@notification_kind(REACTIVATED_NOTICE)
def reactivated_notices(user: User, context: dict) -> Notices:
    return _status_notices(user, state="reactivated")


@email_kind(CLOSED_EMAIL)
def closed_email(user: User, context: dict):
    """Goodbye, to the old address (context["email"]): the account's own is a tombstone."""
    if not context.get("email"):
        return None
    return _email("account_closed", context["email"], email=context["email"], at=context["at"])


@notification_kind(CLOSED_NOTICE)
def closed_notices(user: User, context: dict) -> Notices:
    """Every active admin is told; by id, not by the erased address."""
    by = "by staff" if context.get("by") == "staff" else "by its owner"
    body = f"Account #{user.pk} was closed {by} on {context.get('at', 'recently')} (UTC)."
    return [_admin_notices(user, kind="account_closed", title="Account closed", body=body)]


@email_kind(MFA_ENABLED_EMAIL)
def mfa_enabled_email(user: User, context: dict):
    return _notice("mfa_enabled", user, context)


@email_kind(MFA_DISABLED_EMAIL)
def mfa_disabled_email(user: User, context: dict):
    """Off by the user, or reset by staff (the user lost the app and the codes)."""
    return _notice("mfa_disabled", user, context, by_staff=context.get("by") == "staff")


@email_kind(MFA_RECOVERY_USED_EMAIL)
def mfa_recovery_used_email(user: User, context: dict):
    """How many remain (context["left"], counted when the code was burnt)."""
    return _notice("mfa_recovery_code_used", user, context, left=context.get("left", 0))


@email_kind(MFA_RECOVERY_NEW_EMAIL)
def mfa_recovery_new_email(user: User, context: dict):
    return _notice("mfa_recovery_codes_new", user, context)


@email_kind(MFA_FAILURES_EMAIL)
def mfa_failures_email(user: User, context: dict):
    """Someone with the first factor (the password, or the mailbox) keeps
    failing the second: the owner should change the password."""
    return _notice("mfa_failures", user, context)
