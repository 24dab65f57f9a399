"""rundramatiq (django_dramatiq's) in the service's log format.

With LOG_FORMAT=json its banner lines are log records like every other line,
and Dramatiq's supervisor leaves logging alone (--skip-logging): the workers
log through Django's LOGGING (core.settings). Dramatiq's supervisor still
prints its rare own warnings (a killed fork at shutdown) as plain text.
"""

import logging

from django.conf import settings
from django_dramatiq.management.commands import rundramatiq

logger = logging.getLogger(__name__)


class _LogLines:
    """Stands in for self.stdout: each written line becomes an INFO record."""

    def write(self, text: str, *args, **kwargs) -> None:
        for line in text.splitlines():
            if line.strip():
                logger.info(line.strip(" *"))


class Command(rundramatiq.Command):
    def handle(self, *args, **options):
        if settings.LOG_FORMAT == "json":
            options["skip_logging"] = True
            self.stdout = _LogLines()
        return super().handle(*args, **options)
