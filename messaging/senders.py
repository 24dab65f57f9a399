"""Email template rendering for the email kinds apps register (messaging.kinds)."""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string


def render_email(template: str, *, to: str, context: dict) -> EmailMultiAlternatives:
    """<template>/{subject.txt, body.txt, body.html}, a folder of the owning
    app's templates (e.g. "signup/email/verification"): the app that owns a
    kind owns its wording, side by side with its handler."""
    base = template
    subject = " ".join(render_to_string(f"{base}/subject.txt", context).split())
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"{base}/body.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
    )
    message.attach_alternative(render_to_string(f"{base}/body.html", context), "text/html")
    return message
