"""Dramatiq actors: they receive outbox ids and call a service. No logic here.

A message carries the ids of the rows one outbox_add_on_commit wrote (a
signup's verification email and announcement: one job, issue 23), or one id
(the relay, and messages of an older release). Either actor delivers rows of
either channel; the queue is the first row's.

Retries: exponential backoff (Dramatiq's Retries middleware). On the last
attempt the service marks the row FAILED with its error before the message
goes to the dead-letter queue, so nothing is dropped silently.
"""

import dramatiq
from django.conf import settings
from dramatiq.middleware import CurrentMessage

from messaging import services

RETRY_OPTIONS = {
    "max_retries": settings.OUTBOX_MAX_RETRIES,
    "min_backoff": settings.OUTBOX_MIN_BACKOFF_MS,
    "max_backoff": settings.OUTBOX_MAX_BACKOFF_MS,
    "time_limit": settings.OUTBOX_TIME_LIMIT_MS,
}


def _is_final_attempt() -> bool:
    """True when the Retries middleware will dead-letter this message if it fails.

    Same limit as Retries: the message's own max_retries, else the actor's.
    """
    message = CurrentMessage.get_current_message()
    if message is None:  # called directly, e.g. from a test or a shell
        return False
    max_retries = message.options.get("max_retries", RETRY_OPTIONS["max_retries"])
    return message.options.get("retries", 0) >= max_retries


def _ids(outbox_id: int | list[int]) -> list[int]:
    return list(outbox_id) if isinstance(outbox_id, list) else [outbox_id]


@dramatiq.actor(queue_name="email", **RETRY_OPTIONS)
def send_email(outbox_id: int | list[int]) -> None:
    services.outbox_deliver(outbox_ids=_ids(outbox_id), final_attempt=_is_final_attempt())


@dramatiq.actor(queue_name="notifications", **RETRY_OPTIONS)
def notify(outbox_id: int | list[int]) -> None:
    services.outbox_deliver(outbox_ids=_ids(outbox_id), final_attempt=_is_final_attempt())


@dramatiq.actor(queue_name="notifications", **RETRY_OPTIONS)
def announce_new_user(outbox_id: int) -> None:
    """The notifications actor's name before messaging.kinds: messages enqueued
    by an older release still find an actor. Remove once none can be left."""
    notify.fn(outbox_id)
