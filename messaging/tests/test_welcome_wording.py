"""The welcome notification is stored text read later, maybe long after the
user verified their address: it must be true whenever it is read, so it never
claims the address is (still) unverified."""

import re

import pytest
from django.utils import timezone

from messaging.models import Notification
from messaging.services import notifications_deliver
from signup.messages import ANNOUNCE_NEW_USER

pytestmark = pytest.mark.django_db

SENTENCE = re.compile(r"[^.!?]+[.!?]?")


def test_the_stored_welcome_makes_no_claim_about_verification(make_user, make_row):
    user = make_user()
    row = make_row(kind=ANNOUNCE_NEW_USER, user=user)
    notifications_deliver(outbox_id=row.pk)
    # The user verifies a second later, then reads the feed.
    user.email_verified_at = timezone.now()
    user.save(update_fields=["email_verified_at"])

    welcome = Notification.objects.get(user=user, kind="welcome")
    text = f"{welcome.title}. {welcome.body}"
    assert "verify your email to start" not in text.lower()
    for sentence in SENTENCE.findall(text):
        sentence = sentence.strip()
        if re.search(r"verif", sentence, re.IGNORECASE):
            # Only a conditional mention is true for a verified reader too.
            assert sentence.lower().startswith("if "), sentence
