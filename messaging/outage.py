"""Broker outages in the worker's log: one line when it goes, one when it is back.

Its own module, below both users: the relay middleware installs the filter
at worker boot, and the relay tells it when the broker answers again.
"""

import logging
import threading

logger = logging.getLogger(__name__)


class BrokerOutageLog(logging.Filter):
    """One line per broker outage per worker process, not a CRITICAL line (or
    a traceback) from every consumer thread every second.

    Installed on Dramatiq's consumer-thread loggers. The first connection
    error of an outage passes, as a WARNING without traceback; the rest, and
    the "Restarting consumer" lines, are dropped until the relay finds the
    broker answering again (broker_up), which logs the recovery once.
    """

    OUTAGE = ("Consumer encountered a connection error", "Restarting consumer")
    ERRORS = (ConnectionError, TimeoutError, OSError)

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self._lock = threading.Lock()

    def _is_outage(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if message.startswith(self.OUTAGE):
            return True
        error = record.exc_info[1] if record.exc_info else None
        import redis

        return isinstance(error, (redis.ConnectionError, redis.TimeoutError, *self.ERRORS))

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._is_outage(record):
            return True
        with self._lock:
            if self.down:
                return False
            self.down = True
        error = record.exc_info[1] if record.exc_info else None
        text = record.getMessage() + (f": {error}" if error is not None else "")
        record.msg, record.args = f"broker state=down ({text}); logged once per outage", ()
        record.exc_info, record.exc_text = None, None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True

    def broker_up(self) -> None:
        with self._lock:
            was_down, self.down = self.down, False
        if was_down:
            logger.warning("broker state=up")


outage_log = BrokerOutageLog()


def install_outage_log(broker) -> None:
    queues = broker.get_declared_queues()
    for queue in (*queues, *(f"{q}.DQ" for q in queues)):
        logging.getLogger(f"dramatiq.worker.ConsumerThread({queue})").addFilter(outage_log)
