"""Health of the parts a signup needs: the database and the broker."""

import logging

import dramatiq
from django.db import connection

logger = logging.getLogger(__name__)


def check_database() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        logger.warning("health part=database state=error", exc_info=True)
        return False
    return True


def check_broker() -> bool:
    try:
        return bool(dramatiq.get_broker().ping())
    except Exception:
        logger.warning("health part=broker state=error", exc_info=True)
        return False


def health_report() -> dict[str, str]:
    parts = {"database": check_database(), "broker": check_broker()}
    report = {name: "ok" if ok else "error" for name, ok in parts.items()}
    return {"status": "ok" if all(parts.values()) else "error", **report}
