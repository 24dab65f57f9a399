"""Start the service as a deployment does: fresh database, migrate, web, worker, SMTP.

Every process gets the production-like environment (DEBUG=0, Argon2id, a
real PostgreSQL and Redis) except RATE_LIMIT_PER_IP=off: all simulated
users come from 127.0.0.1, while the per-address limits stay on. The
database and Redis db are the runner's own, wiped at start, so a run never
touches development or test data.

The fault tests (loadtests/faults) reuse it with their own database, a
private Redis they stop and start, extra environment, an SMTP sink of their
own (in-process, so they can make it refuse mail) and a worker they kill.
"""

import contextlib
import fcntl
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis

from core.testing import free_port

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("LOAD_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# The processes under test may reach PostgreSQL another way (through PgBouncer:
# scripts/with-pgbouncer sets LOAD_APP_PG_URL); creating the database does not.
APP_PG_URL = os.environ.get("LOAD_APP_PG_URL", PG_ADMIN_URL)
DB_NAME = os.environ.get("LOAD_DB_NAME", "payshift_load")
REDIS_URL = os.environ.get("LOAD_REDIS_URL", "redis://127.0.0.1:6379/14")
ACCESS_LOG_FORMAT = "%(m)s %(U)s %(s)s %(L)s"  # %(L)s: request time in seconds, to the µs


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def database_url(name: str = DB_NAME) -> str:
    """How the service's processes (and the runner's checks) reach database name."""
    base = APP_PG_URL.rsplit("/", 1)[0]
    return f"{base}/{name}"


@dataclass
class Stack:
    results: Path
    web_workers: int
    web_nodes: int = 1  # gunicorn masters on their own ports (machines, as far as one box can)
    worker_nodes: int = 1  # rundramatiq processes started separately, each with its relay
    worker_processes: int = 1
    worker_threads: int = 4
    start_worker: bool = True
    port: int = field(default_factory=free_port)
    more_ports: list[int] = field(default_factory=list)  # web nodes after the first
    smtp_port: int = field(default_factory=free_port)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    # For the fault tests; the defaults are the load runner's.
    db_name: str = DB_NAME
    redis_url: str = REDIS_URL
    broker_url: str = ""  # empty: the broker is Redis at redis_url; amqp://...: RabbitMQ
    namespace: str = "payshift-load"
    extra_env: dict[str, str] = field(default_factory=dict)
    start_sink: bool = True  # False: the caller runs a sink on smtp_port
    mail_delay: float = 0.0  # seconds the sink takes per message (a slow provider)
    web_config: str = ""  # a gunicorn config file instead of gunicorn.conf.py
    logs: set[str] = field(default_factory=set, repr=False)  # names whose log was started

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def urls(self) -> list[str]:
        """One base URL per web node (the first is self.url)."""
        return [f"http://127.0.0.1:{port}" for port in (self.port, *self.more_ports)]

    @property
    def mail_store(self) -> Path:
        return self.results / "mail.jsonl"

    @property
    def access_log(self) -> Path:
        return self.results / "access.log"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SILK"))}
        env.update(
            DEBUG="0",
            SECRET_KEY=self.secret_key,
            DATABASE_URL=database_url(self.db_name),
            REDIS_URL=self.redis_url,
            BROKER_URL=self.broker_url or self.redis_url,
            DRAMATIQ_NAMESPACE=self.namespace,
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=str(self.smtp_port),
            EMAIL_USE_TLS="0",
            RATE_LIMIT_PER_IP="off",
            # DEBUG=0 requires host names (core.settings); the stack is local.
            ALLOWED_HOSTS=os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost"),
            SILK_ENABLED="0",
            PYTHONDONTWRITEBYTECODE="1",
        )
        env.update(self.extra_env)
        return env

    def start(self) -> None:
        """Fresh state, schema, then sink, web and (unless told not to) worker."""
        self.lock()
        self.secret_key = secrets.token_urlsafe(50)
        self.results.mkdir(parents=True, exist_ok=True)
        ensure_services()
        recreate_database(self.db_name)
        redis.Redis.from_url(self.redis_url).flushdb()
        if self.broker_url.startswith("amqp"):
            purge_rabbitmq(self.broker_url)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
            cwd=ROOT,
            env=self.env(),
            check=True,
        )
        if self.start_sink:
            self.spawn("sink", self.sink_argv())
        self.more_ports = [free_port() for _ in range(self.web_nodes - 1)]
        for node in range(self.web_nodes):
            self.spawn_web(node)
        if self.start_worker:
            for node in range(self.worker_nodes):
                self.spawn_worker(node=node)
        self.wait_ready()

    def sink_argv(self) -> list[str]:
        """The SMTP sink's command (messaging.sink): its port, its store, its delay per message."""
        sink = ["--port", str(self.smtp_port), "--store", str(self.mail_store), "--quiet"]
        if self.mail_delay:
            sink += ["--delay", repr(float(self.mail_delay))]
        return [sys.executable, "-m", "messaging.sink", *sink]

    def counters(self):
        """PostgreSQL, Redis and the web's hash counters now (loadtests.dbstats)."""
        from loadtests import dbstats

        return dbstats.snapshot(database_url(self.db_name), self.redis_url, self.urls)

    def spawn_web(
        self,
        node: int = 0,
        *,
        root: Path = ROOT,
        name: str = "",
        config: str = "",
        port: int | None = None,
    ) -> subprocess.Popen:
        """Gunicorn for web node `node` (on its port, or on port) from the code at
        root (another release's tree: run from there, first on sys.path). config:
        a gunicorn config file instead of root's gunicorn.conf.py (default:
        web_config)."""
        port = port or (self.port, *self.more_ports)[node]
        web = [
            "core.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", str(self.web_workers),
            "--access-logfile", str(self.access_log), "--access-logformat", ACCESS_LOG_FORMAT,
            *(["--chdir", str(root)] if root != ROOT else []),
            *(["-c", config or self.web_config] if config or self.web_config else []),
        ]  # fmt: skip
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        return self.spawn(name or node_name("web", node), [gunicorn, *web], root=root)

    def spawn_worker(
        self, node: int = 0, *, root: Path = ROOT, name: str = "", **env: str
    ) -> subprocess.Popen:
        """`manage.py rundramatiq` (with its relay); env adds to the stack's environment."""
        pool = ["--processes", str(self.worker_processes), "--threads", str(self.worker_threads)]
        argv = [sys.executable, "manage.py", "rundramatiq", *pool]
        return self.spawn(name or node_name("worker", node), argv, env=env, root=root)

    def stop_process(
        self, name: str, sig: int = signal.SIGTERM, timeout: float = 60.0
    ) -> tuple[float, int]:
        """Signal one process (not its group: as an orchestrator signals a container's
        main process, which stops its own children) and reap it: (seconds it took,
        exit status). Past timeout the group is SIGKILLed and RuntimeError raised.
        """
        proc = self.procs.pop(name)
        started = time.monotonic()
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
            raise RuntimeError(
                f"{name} did not exit within {timeout:g} s of signal {sig}"
            ) from None
        return time.monotonic() - started, proc.returncode

    def kill_worker(self, sig: int = signal.SIGKILL, timeout: float = 30.0, node: int = 0) -> None:
        """Signal a worker node's whole process group (main process and forks) and reap it."""
        proc = self.procs.pop(node_name("worker", node))
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
        proc.wait(timeout=timeout)

    def spawn(
        self, name: str, argv: list[str], env: dict[str, str] | None = None, root: Path = ROOT
    ) -> subprocess.Popen:
        """Start a process in its own group; a restarted one appends to its log.

        root: the tree it runs from (its working directory, and first on sys.path).
        """
        mode = "a" if name in self.logs else "w"
        self.logs.add(name)
        log = open(self.results / f"{name}.log", mode)  # noqa: SIM115 (the child keeps it)
        env = {**self.env(), **(env or {})}
        if root != ROOT:  # ahead of the editable install's path to ROOT
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
        self.procs[name] = subprocess.Popen(
            argv, cwd=root, env=env, stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() ends its children too
        )  # fmt: skip
        log.close()
        return self.procs[name]

    def wait_ready(self, timeout: float = 60.0, urls: list[str] | None = None) -> None:
        """The sink listens and every web node's (or these urls') /api/v1/health says ok
        (database, broker)."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        pending = list(urls or self.urls)
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}: see {name}.log")
            if listening(self.smtp_port):
                try:
                    with urllib.request.urlopen(f"{pending[0]}/api/v1/health", timeout=2) as resp:  # noqa: S310 (http, ours)
                        body = json.loads(resp.read())
                        if resp.status == 200 and body.get("status") == "ok":
                            pending.pop(0)
                            if not pending:
                                return
                            continue
                        last = str(body)
                except (urllib.error.URLError, OSError, ValueError) as exc:
                    last = str(exc)
            time.sleep(0.25)
        raise RuntimeError(f"service not healthy after {timeout:.0f} s: {last}")

    def warm_up(self, urls: list[str] | None = None) -> list[str]:
        """Concurrent signups, resends and verifies so every web worker (of every
        node, or of these urls' nodes) is warm.

        A cold worker's first requests take 300-600 ms here (lazy imports, the
        common-password list, a new PostgreSQL connection); a deployment serving
        traffic is warm, so that is left out of the measurement. Returns the
        addresses signed up: their verification emails are expected too.
        """
        urls = urls or self.urls
        token = secrets.token_hex(4)
        count = 4 * self.web_workers * len(urls)
        emails = [f"warmup-{token}-{i}@example.com" for i in range(count)]
        with ThreadPoolExecutor(max_workers=2 * self.web_workers) as pool:
            answers = list(pool.map(self._journey, emails, range(count), [urls] * count))
        if any(answer != (202, 202, 400) for answer in answers):
            raise RuntimeError(f"warm-up answered {sorted(set(answers))}, not (202, 202, 400)")
        return emails

    def _journey(
        self, email: str, turn: int = 0, urls: list[str] | None = None
    ) -> tuple[int, int, int]:
        """Signup (202), a resend (202: the first resend of an address is answered;
        inside the signup's cooldown it sends nothing), a wrong code (400)."""
        password = secrets.token_urlsafe(16)
        urls = urls or self.urls
        url = urls[turn % len(urls)]
        return (
            self._post("/api/v1/signup", {"email": email, "password": password}, url),
            self._post("/api/v1/signup/resend", {"email": email}, url),
            self._post(
                "/api/v1/signup/verify",
                {"email": email, "code": "00000O", "verification_token": "warm-up"},
                url,
            ),
        )

    def _post(self, path: str, body: dict, url: str | None = None) -> int:
        request = urllib.request.Request(  # noqa: S310 (http, ours)
            f"{url or self.url}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 (http, ours)
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code

    def lock(self) -> None:
        """One run at a time per database: two stacks would share it, Redis db and queues.

        (Seen: a second run's worker took the first run's messages and mailed
        them to its own sink, and the first run's email check failed.)
        """
        path = Path(tempfile.gettempdir()) / f"{self.db_name}.lock"
        self._lock = open(path, "w")  # noqa: SIM115 (held until stop())
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise RuntimeError(
                f"another load run is using {self.db_name} ({path} is locked)"
            ) from None

    def stop(self) -> None:
        """SIGTERM each process group we started, then SIGKILL what is left."""
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if getattr(self, "_lock", None) is not None:
            self._lock.close()  # releases the flock
            self._lock = None


def purge_rabbitmq(url: str, queues=("email", "notifications")) -> None:
    """Empty the service's RabbitMQ queues (main, delay, dead letter) left by an earlier run."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        for queue in queues:
            for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
                with contextlib.suppress(pika.exceptions.ChannelClosedByBroker):  # not declared
                    connection.channel().queue_purge(name)
    finally:
        connection.close()


def node_name(role: str, node: int) -> str:
    """'web', 'web1', ...: the first node keeps the plain name (the fault tests use it)."""
    return role if node == 0 else f"{role}{node}"


def ensure_services() -> None:
    """PostgreSQL and Redis must answer; scripts/services starts them where it can."""
    if listening(5432) and listening(6379):
        return
    subprocess.run([str(ROOT / "scripts" / "services")], check=True)


def recreate_database(name: str = DB_NAME) -> None:
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise ValueError(f"the database name must be a plain identifier, not {name!r}")
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def outbox_states(name: str = DB_NAME) -> dict[str, int]:
    with psycopg.connect(database_url(name)) as conn:
        rows = conn.execute("SELECT state, count(*) FROM messaging_outbox GROUP BY state")
        return {state: count for state, count in rows}


def password_schemes(name: str = DB_NAME) -> dict[str, int]:
    """Stored hashes by algorithm prefix: proves the run used Argon2id, not a test hasher."""
    query = (
        "SELECT split_part(password, '$', 1) || '$' || split_part(password, '$', 2)"
        " || '$' || split_part(password, '$', 4), count(*) FROM signup_user GROUP BY 1"
    )
    with psycopg.connect(database_url(name)) as conn:
        return {scheme: count for scheme, count in conn.execute(query)}
