"""Health of the parts a signup needs: the database and the broker.

Three views of it (docs/api.md): /health (both parts; 503 when one is
down), /health/ready (503 only without the database: a broker outage is
ridden out, signups still answer 202, so it is "degraded", not a reason for
a load balancer to drain the node) and /health/live (the process answers).

A failing part is logged once when its state changes, without a
traceback, not on every probe (a probe every few seconds during an outage
flooded the log).
"""

import logging
import threading

import dramatiq
from django.db import connection

logger = logging.getLogger(__name__)


class PartStates:
    """The last known state of each part, per process: log changes only."""

    def __init__(self) -> None:
        self._states: dict[str, bool] = {}
        self._lock = threading.Lock()

    def record(self, part: str, ok: bool, error: BaseException | None = None) -> bool:
        with self._lock:
            before = self._states.get(part)
            self._states[part] = ok
        if ok and before is False:
            logger.warning("health part=%s state=ok (recovered)", part)
        elif not ok and before is not False:
            logger.warning("health part=%s state=error error=%s", part, error)
        return ok


states = PartStates()


def check_database() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return states.record("database", False, exc)
    return states.record("database", True)


def check_broker() -> bool:
    try:
        ok = bool(dramatiq.get_broker().ping())
    except Exception as exc:
        return states.record("broker", False, exc)
    return states.record("broker", ok)


def _parts() -> dict[str, str]:
    parts = {"database": check_database(), "broker": check_broker()}
    return {name: "ok" if ok else "error" for name, ok in parts.items()}


def health_report() -> dict[str, str]:
    parts = _parts()
    return {"status": "ok" if set(parts.values()) == {"ok"} else "error", **parts}


def ready_report() -> dict[str, str]:
    """ok; degraded (the broker is down: signups still succeed); error (no database)."""
    parts = _parts()
    if parts["database"] != "ok":
        status = "error"
    else:
        status = "ok" if parts["broker"] == "ok" else "degraded"
    return {"status": status, **parts}
