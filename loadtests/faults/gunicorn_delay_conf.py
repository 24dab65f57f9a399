"""Gunicorn settings of the graceful-stop scenario: the service's, plus a delay a
request asks for (loadtests/faults/test_graceful_shutdown.py). Not for production.

A request with `X-Fault-Delay: <seconds>` (at most 5) waits that long in its
worker before Django sees it: accepted and in flight for that long, so a
SIGTERM surely finds it there.
"""

import time

from core.gunicorn_conf import *  # noqa: F403


def pre_request(worker, req) -> None:
    for name, value in req.headers:
        if name == "X-FAULT-DELAY":
            time.sleep(min(5.0, float(value)))
