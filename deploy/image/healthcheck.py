"""The image's HEALTHCHECK, and the Kubernetes worker's liveness probe.

    python /app/healthcheck.py

What it checks depends on what the container runs (PID 1's command line):
- gunicorn (the default command): GET /api/v1/health/live on 127.0.0.1:$PORT
  with a Host header from ALLOWED_HOSTS (Django answers 400 to any other
  host), expecting 200;
- the worker (rundramatiq, which execs dramatiq): Dramatiq's worker
  processes are alive (a dead fork means a stuck node) and, when
  WORKER_METRICS_PORT is set, its metrics endpoint answers;
- the development mail sink: its SMTP port accepts a connection;
- anything else (migrate, one-off commands): healthy while it runs.
Exit 0 healthy, 1 not. Only the standard library: it runs in the image.
"""

import os
import socket
import sys
import urllib.error
import urllib.request

TIMEOUT = 4.0


def pid1_command() -> list[str]:
    try:
        with open("/proc/1/cmdline", "rb") as fh:
            return [part.decode(errors="replace") for part in fh.read().split(b"\0") if part]
    except OSError:
        return []


def host_header() -> str:
    """The first host ALLOWED_HOSTS names ("*" or none: localhost)."""
    for host in os.environ.get("ALLOWED_HOSTS", "").split(","):
        host = host.strip().lstrip(".")
        if host and "*" not in host:
            return host
    return "localhost"


def http_ok(url: str, host: str | None = None) -> bool:
    request = urllib.request.Request(url)  # noqa: S310 (a fixed http URL)
    if host:
        request.add_header("Host", host)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:  # noqa: S310
            return answer.status == 200
    except (urllib.error.URLError, OSError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return False


def tcp_ok(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT):
            return True
    except OSError as exc:
        print(f"unhealthy: 127.0.0.1:{port}: {exc}", file=sys.stderr)
        return False


def dramatiq_workers_alive() -> bool:
    """Dramatiq's supervisor (PID 1) forks worker processes: at least one lives."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or entry == "1" or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                if b"dramatiq" in fh.read():
                    return True
        except OSError:
            continue
    print("unhealthy: no Dramatiq worker process", file=sys.stderr)
    return False


def main() -> int:
    command = " ".join(pid1_command())
    if "gunicorn" in command:
        port = os.environ.get("PORT", "8000")
        return 0 if http_ok(f"http://127.0.0.1:{port}/api/v1/health/live", host_header()) else 1
    if "dramatiq" in command:
        if not dramatiq_workers_alive():
            return 1
        metrics_port = os.environ.get("WORKER_METRICS_PORT", "")
        if metrics_port and not http_ok(f"http://127.0.0.1:{metrics_port}/"):
            return 1
        return 0
    if "mailsink" in command:
        return 0 if tcp_ok(int(os.environ.get("MAILSINK_PORT", "1025"))) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
