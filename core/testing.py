"""Test support shared by the suites, the SMTP sink and the load runner.

Never imported by the service itself.
"""

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A redis-server of the test's own on a fixed free port, with no persistence,
    that can be stopped and started again on that port (a broker outage)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = [
            shutil.which("redis-server") or "redis-server",
            *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir)),
            *("--save", "", "--appendonly", "no"),
        ]
        with open(self.workdir / "redis.log", "a") as log:
            # argv is ours: the redis-server binary and fixed flags.
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
        try:
            deadline = time.monotonic() + 10
            while not self._ping(client):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on {self.port} did not answer (redis.log)")
                time.sleep(0.05)
        finally:
            client.close()

    def _ping(self, client: redis.Redis) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


def require_binary(name: str) -> str:
    """The path of a program a test needs (chromium, prometheus, promtool).

    Missing in CI is a failure (scripts/services installs them); on a
    developer's machine the test is skipped with the install command.
    """
    import os

    import pytest

    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not installed (apt-get install {name}; scripts/services does it in CI)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
