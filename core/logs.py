"""Log lines for web, worker and gunicorn: text by default, JSON with LOG_FORMAT=json.

Every record gets the request id (core.requestid), so that one grep for it
finds the signup's request, its outbox rows' enqueue and the worker's
delivery lines. Gunicorn's own loggers get the same formatter through
gunicorn_logconfig (gunicorn.conf.py).
"""

import logging
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from core.requestid import current_request_id

JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
RENAMED = {"asctime": "time", "levelname": "level", "name": "logger"}


class RequestIdFilter(logging.Filter):
    """Adds record.request_id (the current request's or job's; "-" outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = current_request_id() or "-"
        return True


class JsonFormatter(_JsonFormatter):
    """One JSON object per line: time, level, logger, message, request_id, extras."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("fmt", JSON_FIELDS)
        kwargs.setdefault("rename_fields", RENAMED)
        super().__init__(*args, **kwargs)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        # ISO 8601 in UTC with milliseconds, what log shippers parse.
        from datetime import UTC, datetime

        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class GunicornAccessFilter(logging.Filter):
    """Lifts gunicorn's access-log atoms into fields (method, path, status, ...)."""

    def filter(self, record: logging.LogRecord) -> bool:
        atoms = record.args if isinstance(record.args, dict) else {}
        if atoms:
            record.method = atoms.get("m")
            record.path = atoms.get("U")
            record.status = atoms.get("s")
            record.duration_ms = round(int(atoms.get("D", 0)) / 1000, 3)
            record.remote_addr = atoms.get("h")
            request_id = atoms.get("{x-request-id}o", "-")
            record.request_id = "" if request_id == "-" else request_id
        return True


def gunicorn_logconfig(log_format: str) -> dict:
    """dictConfig for gunicorn's error and access loggers, on stdout/stderr."""
    formatter = (
        {"()": "core.logs.JsonFormatter"}
        if log_format == "json"
        else {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"}
    )
    handler = {"formatter": "main", "filters": ["request_id"], "class": "logging.StreamHandler"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": "core.logs.RequestIdFilter"},
            "access": {"()": "core.logs.GunicornAccessFilter"},
        },
        "formatters": {"main": formatter},
        "handlers": {
            "error": {**handler, "stream": "ext://sys.stderr"},
            "access": {
                **handler,
                "filters": ["access", "request_id"],
                "stream": "ext://sys.stdout",
            },
        },
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["error"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["access"], "propagate": False},
        },
        "root": {"level": "INFO", "handlers": []},
    }
