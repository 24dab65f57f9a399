"""Housekeeping jobs that every worker runs by itself, from the relay's thread.

settings.WORKER_PERIODIC_JOBS maps a dotted path to the seconds between two
runs in one worker process. A deployment runs no cron or scheduler for them;
with several workers each runs them, so a job must be safe to run
concurrently (the owning app's concern: the expiry locks with SKIP LOCKED).
This module names no job itself: the apps' jobs are listed in settings.
"""

import logging
import time
from collections.abc import Callable, Mapping

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


class PeriodicJobs:
    """Runs each configured job when its interval has passed (first: at once)."""

    def __init__(self, jobs: Mapping[str, float] | None = None) -> None:
        configured: Mapping[str, float] = settings.WORKER_PERIODIC_JOBS if jobs is None else jobs
        self._jobs: list[tuple[str, Callable[[], object], float]] = [
            (path, import_string(path), float(every)) for path, every in configured.items()
        ]
        self._due = {path: 0.0 for path in configured}

    def run_due(self) -> None:
        for path, job, every in self._jobs:
            now = time.monotonic()
            if now < self._due[path]:
                continue
            self._due[path] = now + every
            try:
                job()
            except Exception:
                logger.exception("periodic job=%s outcome=error", path)
