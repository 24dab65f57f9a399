"""A live stack for the operator's view: gunicorn and rundramatiq on the test
database (the deployment's commands), a real SMTP sink, and their logs."""

import json
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import ROOT, django_env, stop_process, wait_until
from core.testing import free_port


@dataclass
class LiveStack:
    tmp: Path
    env: dict
    web_port: int = field(default_factory=free_port)
    worker_metrics_port: int = field(default_factory=free_port)
    procs: list = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def _spawn(self, name: str, argv: list[str], **env) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "w")  # noqa: SIM115
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**self.env, **{key: str(value) for key, value in env.items()}},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def start(self, worker: bool = True) -> None:
        """The deployment's commands; the web's metric files are its own."""
        web = [sys.executable, "-m", "gunicorn", "core.wsgi", "--workers", "2"]
        web += ["--bind", f"127.0.0.1:{self.web_port}", "--no-control-socket"]
        self._spawn("web", web, PROMETHEUS_MULTIPROC_DIR=self.tmp / "web-metrics")
        if worker:
            argv = [sys.executable, "manage.py", "rundramatiq", "--processes", "1"]
            self._spawn("worker", [*argv, "--threads", "2"])
        wait_until(self._web_answers, timeout=30, interval=0.2)

    def _web_answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/health", timeout=2):  # noqa: S310
                return True
        except OSError as exc:
            return getattr(exc, "code", None) is not None  # any HTTP answer

    def post(self, path: str, body: dict, headers: dict | None = None) -> tuple[int, dict]:
        """POST JSON; the status and the answer's headers."""
        request = urllib.request.Request(  # noqa: S310 (our own loopback server)
            f"{self.url}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", **(headers or {})},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, dict(response.headers)

    def log_lines(self, name: str) -> list[str]:
        return (self.tmp / f"{name}.log").read_text().splitlines()

    def stop(self) -> None:
        for proc in self.procs:
            stop_process(proc)


def stack_env(stack: LiveStack, tmp_path: Path, mail_sink) -> dict:
    return django_env(
        LOG_FORMAT="json",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=mail_sink.port,
        RATE_LIMIT_PER_IP="off",
        WORKER_METRICS_PORT=stack.worker_metrics_port,
        WORKER_METRICS_HOST="127.0.0.1",
        WORKER_METRICS_DIR=tmp_path / "worker-metrics",
        OUTBOX_RELAY_INTERVAL_SECONDS=1,
        OUTBOX_MIN_BACKOFF_MS=200,
        OUTBOX_MAX_BACKOFF_MS=1000,
    )


@pytest.fixture
def live_stack(tmp_path, mail_sink):
    stack = LiveStack(tmp=tmp_path, env={})
    stack.env = stack_env(stack, tmp_path, mail_sink)
    (tmp_path / "worker-metrics").mkdir()
    (tmp_path / "web-metrics").mkdir()
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture
def live_web(tmp_path, mail_sink):
    """Gunicorn alone (DEBUG off, collectstatic's files): what a browser loads."""
    stack = LiveStack(tmp=tmp_path, env={})
    stack.env = stack_env(stack, tmp_path, mail_sink)
    (tmp_path / "web-metrics").mkdir()
    stack.start(worker=False)
    yield stack
    stack.stop()
