"""Gunicorn settings the service needs whatever the flags: log format, metrics.

Loaded by ./gunicorn.conf.py (gunicorn reads that file from the working
directory by default), so `gunicorn core.wsgi` from the checkout gets them;
elsewhere: `gunicorn -c python:core.gunicorn_conf core.wsgi`.
"""

import os
import shutil
import tempfile
from pathlib import Path

# Gunicorn's sync worker, but its own error answers (414 request line too
# long, 431 headers too large, 400 malformed request) are JSON like the API's.
worker_class = "core.gunicorn_workers.JsonErrorsSyncWorker"

_log_format = os.environ.get("LOG_FORMAT", "text").strip().lower()
if _log_format == "json":
    from core.logs import gunicorn_logconfig

    # Gunicorn's own lines (boot, worker exits, access) as JSON like the app's.
    logconfig_dict = gunicorn_logconfig(_log_format)

# Metrics from several workers: prometheus-client's multiprocess mode keeps
# each worker's values in files here, and /metrics sums them. Set before any
# worker imports prometheus_client (it reads the variable on import).
_own_dir = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _own_dir:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="payshift-web-metrics-")


def on_starting(server) -> None:
    """Start from empty metric files: a restart is a restart for counters too."""
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    """Remove the metric files' directory if it was ours (a temporary one)."""
    if _own_dir:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
