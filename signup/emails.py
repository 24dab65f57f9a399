"""The emails the signup app queues, registered with messaging by kind."""

from django.conf import settings

from messaging.kinds import email_kind
from messaging.senders import render_email
from signup.models import VerificationCode
from signup.services import SIGNUP_NOTICE_EMAIL, VERIFICATION_EMAIL, verification_code_issue


@email_kind(VERIFICATION_EMAIL)
def verification_email(user):
    if user.is_verified or not user.is_active:
        return None  # verified meanwhile: a code would be noise
    code = verification_code_issue(user=user, purpose=VerificationCode.Purpose.VERIFY_EMAIL)
    return render_email(
        "verification",
        to=user.email,
        context={"code": code, "minutes": settings.SIGNUP_CODE_TTL_SECONDS // 60},
    )


@email_kind(SIGNUP_NOTICE_EMAIL)
def signup_attempt_notice(user):
    return render_email("signup_attempt_notice", to=user.email, context={"email": user.email})
