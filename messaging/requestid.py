"""Carries the request id from the web request to the worker's log lines.

On enqueue (web), the current request id goes into the message options; on
processing (worker), it becomes the worker thread's current id. A message
the relay re-sends has none: the worker reads it from the outbox row.
"""

import dramatiq
from dramatiq.broker import MessageProxy

from core.requestid import current_request_id, request_id_var

OPTION = "request_id"
OUTBOX_ACTORS = {"send_email", "notify", "announce_new_user"}  # the last: legacy name


class RequestIdMiddleware(dramatiq.Middleware):
    def before_enqueue(self, broker: dramatiq.Broker, message: dramatiq.Message, delay) -> None:
        request_id = current_request_id()
        if request_id and OPTION not in message.options:
            message.options[OPTION] = request_id

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        request_id = message.options.get(OPTION) or self._from_outbox_row(message)
        request_id_var.set(request_id or "")

    def after_process_message(
        self, broker: dramatiq.Broker, message: MessageProxy, *, result=None, exception=None
    ) -> None:
        request_id_var.set("")

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        request_id_var.set("")

    @staticmethod
    def _from_outbox_row(message: MessageProxy) -> str:
        if message.actor_name not in OUTBOX_ACTORS or not message.args:
            return ""
        from django.db import DatabaseError

        from messaging.models import Outbox

        try:
            return (
                Outbox.objects.filter(pk=message.args[0])
                .values_list("request_id", flat=True)
                .first()
                or ""
            )
        except DatabaseError:
            return ""
