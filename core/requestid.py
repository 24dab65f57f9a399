"""The request id: one value per request, carried into outbox rows and worker logs.

A contextvar, so that log lines, outbox writes and Dramatiq's enqueue can
read it without being handed it; the worker sets it from the message (see
messaging.requestid), so one grep follows a signup to its email.
"""

import re
import uuid
from collections.abc import Callable
from contextvars import ContextVar

from django.http import HttpRequest, HttpResponse

HEADER = "X-Request-ID"
# An id from a proxy or client is kept when it is short and plain (it ends up
# in logs and rows); anything else is replaced.
_VALID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")

request_id_var: ContextVar[str] = ContextVar("request_id", default="")


def current_request_id() -> str:
    """The id of the request (or job) this code runs for; "" outside one."""
    return request_id_var.get()


def new_request_id() -> str:
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Takes X-Request-ID from the request or makes one; echoes it in the answer."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get(HEADER, "")
        request_id = incoming if _VALID.match(incoming) else new_request_id()
        # Not reset on the way out: Django logs an error answer ("Not Found:
        # ...") after the middleware chain, and it belongs to this request.
        # The next request on this thread sets its own.
        request_id_var.set(request_id)
        response = self.get_response(request)
        response[HEADER] = request_id
        return response
