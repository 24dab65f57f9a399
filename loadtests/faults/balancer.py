"""A load balancer in front of the web nodes: nginx (Debian's), a private instance.

Its configuration, pid file, temporary files and logs live in the scenario's
results directory (nginx -p); it runs in the foreground as our child. The
upstream is the web nodes' ports; nginx retries a request on the next node
when the first refuses or resets the connection, times out, or answers 502 or
503 — POST too (`non_idempotent`): a signup is safe to send twice with its
Idempotency-Key (docs/api.md, "Safe retries"), and the scenarios send one with
every signup. No keepalive to the upstream (nginx's default): each request
opens a connection, so a node that stopped listening is noticed at once.

The access log has one line per client request: the nodes tried, in order
($upstream_addr "a, b" when it retried) with their statuses, and the
Idempotency-Key, which the scenarios make the address's local part (the
node that created an account is then known).
"""

import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from core.testing import free_port
from loadtests.stack import listening

LOG_FORMAT = (
    "$msec $request_time $status $request_method $uri"
    ' "$upstream_addr" "$upstream_status" "$http_idempotency_key"'
)

CONFIG = """\
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    log_format balancer '{log_format}';
    access_log {dir}/nginx-access.log balancer;
    client_body_temp_path {dir}/nginx-tmp/body;
    proxy_temp_path {dir}/nginx-tmp/proxy;
    fastcgi_temp_path {dir}/nginx-tmp/fastcgi;
    uwsgi_temp_path {dir}/nginx-tmp/uwsgi;
    scgi_temp_path {dir}/nginx-tmp/scgi;
    upstream web {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://web;
            proxy_next_upstream error timeout http_502 http_503 non_idempotent;
            proxy_next_upstream_tries 3;
            proxy_connect_timeout 2s;
            proxy_read_timeout 30s;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
"""


@dataclass
class Request:
    """One line of the balancer's access log."""

    at: float  # time.time() when nginx finished it
    seconds: float
    status: int
    method: str
    uri: str
    upstreams: list[str]  # "127.0.0.1:port" of each node tried, in order
    upstream_statuses: list[str]
    key: str  # Idempotency-Key ("-": none)

    @property
    def retried(self) -> bool:
        return len(self.upstreams) > 1


def parse_line(line: str) -> Request:
    parts = line.rstrip("\n").split('"')
    head, addrs, statuses, key = parts[0], parts[1], parts[3], parts[5]
    at, seconds, status, method, uri = head.split()
    return Request(
        at=float(at),
        seconds=float(seconds),
        status=int(status),
        method=method,
        uri=uri,
        upstreams=[a.strip() for a in addrs.split(",") if a.strip() not in ("", "-")],
        upstream_statuses=[s.strip() for s in statuses.split(",")],
        key=key,
    )


class Nginx:
    """nginx balancing over 127.0.0.1:<ports>; start(), requests(), stop()."""

    def __init__(
        self, directory: Path, ports: list[int], *, binary: str, fail_timeout: float = 2.0
    ) -> None:
        self.binary = binary
        self.dir = directory
        self.ports = ports
        self.port = free_port()
        self.fail_timeout = fail_timeout
        self.proc: subprocess.Popen | None = None

    @property
    def access_log(self) -> Path:
        return self.dir / "nginx-access.log"

    def config(self) -> str:
        servers = "\n".join(
            f"        server 127.0.0.1:{port} max_fails=1 fail_timeout={self.fail_timeout:g}s;"
            for port in self.ports
        )
        return CONFIG.format(dir=self.dir, port=self.port, servers=servers, log_format=LOG_FORMAT)

    def start(self) -> "Nginx":
        (self.dir / "nginx-tmp").mkdir(parents=True, exist_ok=True)
        conf = self.dir / "nginx.conf"
        conf.write_text(self.config())
        argv = [
            self.binary,
            "-p",
            str(self.dir),
            "-c",
            str(conf),
            "-e",
            str(self.dir / "nginx-error.log"),
        ]
        with open(self.dir / "nginx.out", "w") as out:
            # argv is ours: Debian's nginx and a configuration this class wrote.
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not listening(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"nginx did not start: see {self.dir}/nginx.out, nginx-error.log"
                )
            time.sleep(0.05)
        return self

    def replace(self, old: int, new: int) -> None:
        """Route to port new instead of old: the configuration rewritten, then
        SIGHUP, nginx's graceful reload (new workers take the new upstream; the
        old ones finish the requests they hold, on the old node)."""
        assert self.proc is not None
        self.ports = [new if port == old else port for port in self.ports]
        (self.dir / "nginx.conf").write_text(self.config())
        self.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)  # the new workers are up within a few ms

    def requests(self) -> list[Request]:
        if not self.access_log.exists():
            return []
        return [parse_line(line) for line in self.access_log.read_text().splitlines() if line]

    def stop(self) -> None:
        """SIGQUIT: nginx's graceful stop (open requests finish)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
