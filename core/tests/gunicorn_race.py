"""Many requests at once against real gunicorn workers (processes and threads)
on the test database: for limits that must hold across processes.

Used by the race tests (core/tests/test_throttle_race.py,
signup/tests/test_login_race.py); they run with django_db(transaction=True)
so the gunicorn processes see what the test committed.
"""

import json
import math
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from conftest import ROOT, django_env, stop_process, wait_until
from core.testing import free_port


@contextmanager
def gunicorn(tmp_path: Path, *, workers: int = 4, threads: int = 8, **env):
    """gunicorn core.wsgi (gthread) on a free port; yields its base URL."""
    import subprocess

    port = free_port()
    (tmp_path / "web-metrics").mkdir(exist_ok=True)
    argv = [sys.executable, "-m", "gunicorn", "core.wsgi", "--no-control-socket"]
    argv += ["--bind", f"127.0.0.1:{port}", "--workers", str(workers)]
    argv += ["--worker-class", "gthread", "--threads", str(threads)]
    log_path = tmp_path / "web.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=django_env(PROMETHEUS_MULTIPROC_DIR=tmp_path / "web-metrics", **env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(url, proc, log_path), timeout=30, interval=0.2)
        yield url
    finally:
        stop_process(proc)


def _answers(url: str, proc, log_path: Path) -> bool:
    if proc.poll() is not None:
        raise AssertionError(f"gunicorn exited:\n{log_path.read_text()}")
    try:
        with urllib.request.urlopen(f"{url}/api/v1/health", timeout=2):  # noqa: S310
            return True
    except OSError as exc:
        return getattr(exc, "code", None) is not None  # any HTTP answer


def post(url: str, body: dict) -> tuple[int, dict, dict]:
    """POST JSON; status, headers and the JSON answer, 4xx included."""
    request = urllib.request.Request(  # noqa: S310 (our own loopback server)
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, dict(response.headers), json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read() or b"{}")


def post_together(url: str, bodies: list[dict]) -> list[tuple[int, dict, dict]]:
    """POST every body at once (one thread each, released by a barrier)."""
    start = threading.Barrier(len(bodies))

    def send(body: dict):
        start.wait(timeout=30)
        return post(url, body)

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(send, bodies))


def clear_of_window_edge(seconds: int, margin: float = 5.0) -> None:
    """Sleep past the next edge of a fixed window of `seconds` if it is near,
    so that a burst is counted in one window."""
    left = math.ceil(seconds - time.time() % seconds)
    if left < margin:
        time.sleep(left + 0.2)
