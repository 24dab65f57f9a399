"""Email builders by outbox kind, and template rendering.

Apps register a builder for each kind of email they queue (signup registers
its own in signup.emails); the worker looks the builder up by the row's kind.
This keeps messaging free of imports from the apps that use it.
"""

from collections.abc import Callable

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

EmailBuilder = Callable[..., EmailMultiAlternatives | None]
_builders: dict[str, EmailBuilder] = {}


def email_builder(kind: str) -> Callable[[EmailBuilder], EmailBuilder]:
    """Register func(user) -> message (or None: nothing to send any more)."""

    def register(func: EmailBuilder) -> EmailBuilder:
        _builders[kind] = func
        return func

    return register


def is_email_kind(kind: str) -> bool:
    return kind in _builders


def build_email(kind: str, user) -> EmailMultiAlternatives | None:
    return _builders[kind](user)


def render_email(template: str, *, to: str, context: dict) -> EmailMultiAlternatives:
    """templates/messaging/email/<template>/{subject.txt, body.txt, body.html}."""
    base = f"messaging/email/{template}"
    subject = " ".join(render_to_string(f"{base}/subject.txt", context).split())
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"{base}/body.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
    )
    message.attach_alternative(render_to_string(f"{base}/body.html", context), "text/html")
    return message
