"""One registry: an outbox kind -> the actor that runs it and its handler.

The app that owns a kind registers it (and owns its wording) at start-up,
from its AppConfig.ready. outbox_add_on_commit refuses a kind nobody
registered when the row is written, so a typo fails in the request's own
test, not as a KeyError after every retry in production.

Handlers get the row's user and its context (a small JSON dict, {} when the
kind needs nothing more; never a secret):
- email kinds: handler(user, context) -> EmailMessage, or None when there is
  nothing to send any more; run by messaging.tasks.send_email.
- notification kinds: handler(user, context) -> a list of unsaved Notification
  objects (one named user each) and Copies (the same notice for every user a
  queryset selects, e.g. every other active admin); all of them are written by
  one INSERT, whatever the number of users; run by messaging.tasks.notify. A
  notification's dedupe_key defaults to the outbox row, so a retry inserts
  nothing twice.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from django.db.models import QuerySet

from messaging.models import Notification

Channel = Literal["email", "notifications"]


@dataclass(frozen=True)
class Copies:
    """One notification for every user of audience (a queryset of users).

    The worker writes them with the INSERT's own SELECT from the users table,
    so their ids never travel through Python and the statement count does not
    grow with the audience (issue 23: each statement is a round trip and an
    ORM build). Written unread; dedupe_key defaults to the outbox row.
    """

    audience: QuerySet
    kind: str
    title: str
    body: str = ""
    dedupe_key: str = ""


Notices = list[Notification | Copies]  # what a notification kind's handler returns


@dataclass(frozen=True)
class Kind:
    name: str
    channel: Channel
    handler: Callable


class UnknownOutboxKindError(LookupError):
    """No app registered this outbox kind."""


_kinds: dict[str, Kind] = {}


def _register(name: str, channel: Channel) -> Callable[[Callable], Callable]:
    def register(handler: Callable) -> Callable:
        known = _kinds.get(name)
        if known is not None and known.handler is not handler:
            raise ValueError(f"outbox kind {name!r} is already registered to {known.handler}")
        _kinds[name] = Kind(name=name, channel=channel, handler=handler)
        return handler

    return register


def email_kind(name: str) -> Callable[[Callable], Callable]:
    """Register handler(user, context) -> EmailMessage | None for the outbox kind name."""
    return _register(name, "email")


def notification_kind(name: str) -> Callable[[Callable], Callable]:
    """Register handler(user, context) -> Notices for the outbox kind name."""
    return _register(name, "notifications")


def kind_get(name: str) -> Kind:
    try:
        return _kinds[name]
    except KeyError:
        raise UnknownOutboxKindError(
            f"outbox kind {name!r} is not registered (known: {sorted(_kinds)})"
        ) from None
