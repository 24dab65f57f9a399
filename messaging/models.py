"""The outbox (jobs as rows, written in the caller's transaction) and notifications."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class Outbox(models.Model):
    """One background job: an email to send or an announcement to make.

    PENDING -> SENDING (claimed by one worker) -> SENT, or FAILED after the
    last retry. enqueued_at tells a row whose enqueue failed (NULL) from one
    waiting in a long queue; claimed_at lets a worker own a row while sending.
    """

    class State(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"
        SENT = "sent"
        FAILED = "failed"

    kind = models.CharField(max_length=40)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # The id of the request that wrote the row (core.requestid): the worker
    # logs its lines with it, so one grep follows a signup to its email.
    request_id = models.CharField(max_length=64, blank=True, default="")
    # What a kind needs besides the user (e.g. the address an email goes to
    # when it is not the user's own): small, and never a secret (it is kept
    # in clear, shown in the admin, and read by anyone with the table).
    context = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = "outbox row"
        verbose_name_plural = "outbox rows"
        indexes = [
            models.Index(
                fields=["state", "created_at"],
                name="outbox_unfinished_idx",
                condition=models.Q(state__in=["pending", "sending"]),
            ),
            # The failed-rows gauge (messaging.metrics) counts these every scrape.
            models.Index(
                fields=["created_at"], name="outbox_failed_idx", condition=models.Q(state="failed")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.state})"


class Notification(models.Model):
    """An in-app notification. dedupe_key makes announcing idempotent."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=40)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    dedupe_key = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "dedupe_key"], name="notification_once"),
        ]
        # The feed is read newest first with a keyset cursor on (created_at, id);
        # the unread filter gets its own partial index, so neither sorts.
        indexes = [
            models.Index(fields=["user", "-created_at", "-id"], name="notification_feed_idx"),
            models.Index(
                fields=["user", "-created_at", "-id"],
                name="notification_unread_idx",
                condition=models.Q(read_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for user {self.user_id}"
