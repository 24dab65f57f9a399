"""Dramatiq actors of the signup app: they call a service; no logic here."""

import dramatiq

from signup import accounts, services


@dramatiq.actor(queue_name="signup", max_retries=5, min_backoff=1000, time_limit=60_000)
def resend_code(email: str, send: bool = True) -> None:
    """A resend answered 202: the worker decides whether to email (see
    services.email_code_resend), so the request does the same work for every
    address. send is False when the code limits held the email back. The
    address is this job's id."""
    if send:
        services.email_code_resend_dispatch(email=email)


@dramatiq.actor(queue_name="signup", max_retries=5, min_backoff=1000, time_limit=60_000)
def account_code(email: str, purpose: str, send: bool = True) -> None:
    """A login or reset code request answered 202: the worker decides whether
    the address gets the code (see accounts._code_request), so the request
    does the same work for every address."""
    if send:
        accounts.account_code_dispatch(email=email, purpose=purpose)
