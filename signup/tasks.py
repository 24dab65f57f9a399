"""Dramatiq actors of the signup app: they call a service; no logic here."""

import dramatiq

from signup import services
from signup.models import VerificationCode


@dramatiq.actor(queue_name="signup", max_retries=5, min_backoff=1000, time_limit=60_000)
def resend_code(
    email: str, send: bool = True, purpose: str = VerificationCode.Purpose.VERIFY_EMAIL
) -> None:
    """A code request answered 202 (resend, login code, password reset): the
    worker decides whether to email (see services.code_email_request), so the
    request does the same work for every address. send is False when the
    code limits held the email back."""
    if send:
        services.code_email_dispatch(email=email, purpose=purpose)
