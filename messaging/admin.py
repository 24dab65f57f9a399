"""Admin: outbox rows (state, attempts, last error; failed ones re-queued) and notifications."""

from django.contrib import admin, messages

from messaging.models import Notification, Outbox
from messaging.services import outbox_requeue


@admin.register(Outbox)
class OutboxAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "kind",
        "user",
        "state",
        "attempts",
        "created_at",
        "sent_at",
        "short_error",
        "request_id",
    )
    list_filter = ("state", "kind")
    search_fields = ("user__email", "=request_id")
    list_select_related = ("user",)
    readonly_fields = [f.name for f in Outbox._meta.fields]
    actions = ["requeue"]

    @admin.display(description="last error")
    def short_error(self, obj: Outbox) -> str:
        return obj.last_error[:80]

    @admin.action(description="Re-queue selected failed rows", permissions=["requeue"])
    def requeue(self, request, queryset):
        count = outbox_requeue(ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(
            request, f"{count} row(s) back to pending; the relay sends them.", messages.SUCCESS
        )

    # Rows are the workers' records: viewable, never edited or deleted here;
    # the one change staff make is the re-queue action (change permission).
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_requeue_permission(self, request):
        return super().has_change_permission(request)


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "kind", "title", "created_at", "read_at")
    list_filter = ("kind",)
    search_fields = ("user__email", "title")
    list_select_related = ("user",)
    raw_id_fields = ("user",)
