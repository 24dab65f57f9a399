"""Dramatiq actors of the signup app: they call a service; no logic here."""

import dramatiq

from signup import services


@dramatiq.actor(queue_name="signup", max_retries=5, min_backoff=1000, time_limit=60_000)
def resend_code(email: str) -> None:
    """A resend that passed the limits: the worker decides whether to email
    (see services.email_code_resend), so the request does the same work for
    every address. The address is this job's id."""
    services.email_code_resend_dispatch(email=email)
