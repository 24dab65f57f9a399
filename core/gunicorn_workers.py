"""Gunicorn workers whose own error answers are the API's JSON error shape.

Gunicorn answers some requests itself, before Django sees them: a request
line over 4,094 bytes (414), a header over 8,190 bytes or too many headers
(431), a malformed request line or header (400)... Stock gunicorn sends an
HTML page; under /api/ every answer is {"detail", "code"} (docs/api.md,
Errors). The default worker class in core/gunicorn_conf.py.

The worker's handle_error (gunicorn.workers.base) decides status and
message, logs the warning (or the exception) and the access line, and then
writes the page with gunicorn.util.write_error, its one caller. So the
worker keeps all of that and replaces only write_error, in its own process.
"""

import json

# gunicorn ships no type information.
from gunicorn import util  # type: ignore[import-untyped]
from gunicorn.workers.sync import SyncWorker  # type: ignore[import-untyped]

# docs/api.md, Errors; any other status gunicorn sends (417, 501) is "error".
CODES = {
    400: "bad_request",
    403: "forbidden",
    414: "uri_too_long",
    431: "headers_too_large",
    500: "server_error",
}


def error_body(status: int, reason: str, message: str) -> bytes:
    detail = f"{reason}: {message}" if message else reason
    # ensure_ascii: gunicorn may quote undecodable client bytes in message.
    return json.dumps({"detail": detail, "code": CODES.get(status, "error")}).encode("ascii")


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn.util.write_error with a JSON body instead of an HTML page."""
    body = error_body(status_int, reason, mesg)
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


class JsonErrorsSyncWorker(SyncWorker):
    """Gunicorn's sync worker (the default), its error answers in JSON."""

    def init_process(self) -> None:
        # After the fork, in this worker's process only; super() runs the loop.
        util.write_error = write_json_error
        super().init_process()
