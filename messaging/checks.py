"""Start-up checks of the delivery timings (`manage.py check`, and every
manage.py command that runs checks: migrate, rundramatiq).

The relay's rules rest on two orderings, both environment-tunable, so a
deployment can break them without noticing (issue 10):
- OUTBOX_STALE_SECONDS > the longest retry backoff: else a row waiting for
  its retry looks lost, and the relay sends a second message for it;
- OUTBOX_CLAIM_TIMEOUT_SECONDS > the actor's time limit: else a live,
  slow attempt looks dead and another worker takes its row over.
And EMAIL_TIMEOUT below the time limit (a warning): a stalled server then
ends an attempt as a socket timeout, not by an interrupt.
"""

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register
from dramatiq.middleware.retries import DEFAULT_MAX_BACKOFF


def longest_backoff_ms() -> int:
    """The longest wait Dramatiq's Retries can pick (jitter doubles it, up to max_backoff)."""
    retries = settings.OUTBOX_MAX_RETRIES
    if retries <= 0:
        return 0
    grown = 2 * settings.OUTBOX_MIN_BACKOFF_MS * 2 ** min(retries - 1, 32)
    return min(grown, settings.OUTBOX_MAX_BACKOFF_MS, DEFAULT_MAX_BACKOFF)


@register("messaging")
def check_outbox_timings(app_configs=None, **kwargs) -> list:
    problems: list[CheckMessage] = []
    backoff_s = longest_backoff_ms() / 1000
    if backoff_s >= settings.OUTBOX_STALE_SECONDS:
        problems.append(
            Error(
                f"OUTBOX_STALE_SECONDS ({settings.OUTBOX_STALE_SECONDS:g}) must exceed the"
                f" longest retry backoff ({backoff_s:g} s): else the relay re-sends rows that"
                " are only waiting for their retry.",
                hint="Raise OUTBOX_STALE_SECONDS or lower OUTBOX_MAX_BACKOFF_MS.",
                id="messaging.E001",
            )
        )
    limit_s = settings.OUTBOX_TIME_LIMIT_MS / 1000
    if limit_s >= settings.OUTBOX_CLAIM_TIMEOUT_SECONDS:
        problems.append(
            Error(
                f"OUTBOX_CLAIM_TIMEOUT_SECONDS ({settings.OUTBOX_CLAIM_TIMEOUT_SECONDS:g}) must"
                f" exceed the actors' time limit ({limit_s:g} s, OUTBOX_TIME_LIMIT_MS): else a"
                " slow attempt still running looks dead and its row is taken over.",
                hint="Raise OUTBOX_CLAIM_TIMEOUT_SECONDS or lower OUTBOX_TIME_LIMIT_MS.",
                id="messaging.E002",
            )
        )
    if settings.EMAIL_TIMEOUT is None or limit_s <= settings.EMAIL_TIMEOUT:
        problems.append(
            Warning(
                f"EMAIL_TIMEOUT ({settings.EMAIL_TIMEOUT}) is not below the actors' time limit"
                f" ({limit_s:g} s): a stalled mail server is then cut off by the time limit.",
                id="messaging.W001",
            )
        )
    return problems
