"""The parts a fault scenario controls, and the figures it reports.

- core.testing.RedisServer: a redis-server of the scenario's own, stopped and started to
  play a broker outage. No persistence: it comes back empty, as a crashed
  Redis without AOF does, so messages queued at the stop are really lost.
- ControlledSink: the aiosmtpd sink (messaging.sink) in this process, so the
  test can make it refuse mail (451), answer slowly, or be down.
- SignupLoad: new-address signups at a fixed rate over plain HTTP, from a few
  threads, each request with a timeout: simpler than Locust, and in-process.
- FaultDB: what the database holds afterwards, read with psycopg (the test
  process's Django settings point at another database).
- Outcome: one row of the FAULT REPORT.
- AofRedisServer: a RedisServer with AOF on (fsync always), so a restart
  keeps the queues, as a production Redis with persistence does.
- PrivatePostgres: a PostgreSQL cluster of the scenario's own (initdb,
  pg_ctl as the postgres user, a free port under /tmp) that it can restart
  without touching the shared server other runs use.
- PostfixMailbox: what a private Postfix (messaging.tests.mta) delivered,
  in the ControlledSink's shape, for the scenarios that need a real MTA.
"""

import asyncio
import contextlib
import http.client
import http.cookiejar
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from aiosmtpd.controller import Controller

from core.testing import RedisServer, free_port
from loadtests.mailstore import VERIFICATION_SUBJECT
from loadtests.pacing import Grid, Schedule
from loadtests.stack import PG_ADMIN_URL, database_url
from loadtests.stats import percentile
from messaging.sink import SinkHandler

SIGNUP = "/api/v1/signup"


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.5) -> bool:
    """Poll predicate until true or timeout (bounded); True if it became true."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


class ControlledHandler(SinkHandler):
    """The sink's handler plus a delay before accepting each recipient.

    The delay sits before DATA: a worker killed while it waits has sent
    nothing, as with a slow provider's envelope phase. (A delay after DATA
    would make the kill leave a delivered mail the worker never saw accepted.)
    """

    def __init__(self, *, store: str | None = None) -> None:
        super().__init__(store=store)
        self.rcpt_delay = 0.0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self.rcpt_delay:
            await asyncio.sleep(self.rcpt_delay)
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)


class ControlledSink:
    """An SMTP sink on a fixed port that the test can make refuse, slow or down."""

    def __init__(self, store: Path) -> None:
        self.port = free_port()
        self.handler = ControlledHandler(store=str(store))
        self._controller: Controller | None = None

    def up(self) -> None:
        if self._controller is None:
            self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
            self._controller.start()

    def down(self) -> None:
        """Stop listening: the worker's connection is refused."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def refuse(self, reply: str = "451 4.3.0 Mail server temporarily unavailable") -> None:
        self.handler.fail_with = reply

    def accept(self) -> None:
        self.handler.fail_with = None

    def verification_mails(self) -> dict[str, list[float]]:
        """Address -> when each verification email arrived (the sink's time.time())."""
        out: dict[str, list[float]] = {}
        with self.handler._lock:
            messages = list(self.handler.messages)
        for message in messages:
            if message["subject"] == VERIFICATION_SUBJECT:
                for to in message["to"]:
                    out.setdefault(to, []).append(message["received_at"])
        return out


@dataclass
class Answer:
    email: str
    sent_at: float  # time.time() when sent: comparable with the sink's received_at
    ms: float
    status: int  # 0: no answer (client timeout, refused or reset connection)
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    error: str = ""

    def json(self) -> object:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def post_json(
    port: int, path: str, payload: dict, *, timeout: float, headers: dict | None = None
) -> Answer:
    """One POST on a fresh connection (gunicorn's sync workers close it anyway)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    sent_at = time.time()
    started = time.perf_counter()
    try:
        conn.request(
            "POST",
            path,
            body=json.dumps(payload),
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        response = conn.getresponse()
        body = response.read()
        status, got = response.status, dict(response.getheaders())
        error = ""
    except (OSError, http.client.HTTPException) as exc:  # TimeoutError is an OSError
        body, status, got, error = b"", 0, {}, f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()
    ms = (time.perf_counter() - started) * 1000
    return Answer(
        email=payload.get("email", ""),
        sent_at=sent_at,
        ms=ms,
        status=status,
        body=body,
        headers=got,
        error=error,
    )


def get_json(port: int, path: str, *, timeout: float = 5.0) -> tuple[int, object]:
    """(status, parsed body); (0, error text) when there was no answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        try:
            return response.status, json.loads(body)
        except ValueError:
            return response.status, body.decode(errors="replace")
    except (OSError, http.client.HTTPException) as exc:
        return 0, f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()


def signup_body(email: str) -> dict:
    return {"email": email, "password": f"fault-{secrets.token_urlsafe(12)}", "full_name": "F T"}


class SignupLoad:
    """New-address signups at a steady rate: thread k of N takes slots k, k+N, ...

    arrivals: "uniform" (evenly spaced) or "poisson" (exponential gaps, as
    independent clients arrive: loadtests.pacing). A slot that comes due while
    its thread is still waiting for an answer is sent late (counted in `late`:
    more than a mean gap late), never dropped. Bounded by max_seconds.
    idempotency: each signup carries an Idempotency-Key, its address's local
    part (so a balancer's access log names the address).
    """

    def __init__(
        self,
        port: int,
        *,
        rate: float,
        prefix: str,
        threads: int = 8,
        timeout: float = 5.0,
        max_seconds: float = 600.0,
        arrivals: str = "uniform",
        idempotency: bool = False,
    ) -> None:
        self.port = port
        self.rate = rate
        self.prefix = prefix
        self.threads = threads
        self.timeout = timeout
        self.max_slots = int(rate * max_seconds)
        self.idempotency = idempotency
        grid = Grid(Schedule.steady(rate), users=threads, arrivals_process=arrivals)
        self._due = [grid.schedule.at(grid.mass(n)) for n in range(self.max_slots)]
        self.late = 0
        self._answers: list[Answer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._t0 = 0.0

    def start(self) -> "SignupLoad":
        self._t0 = time.monotonic()
        self._workers = [
            threading.Thread(target=self._run, args=(k,), name=f"load-{k}", daemon=True)
            for k in range(self.threads)
        ]
        for worker in self._workers:
            worker.start()
        return self

    def _run(self, k: int) -> None:
        period = 1.0 / self.rate
        for n in range(k, self.max_slots, self.threads):
            delay = self._t0 + self._due[n] - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            if self._stop.is_set():
                return
            local = f"{self.prefix}-{n}"
            answer = post_json(
                self.port, SIGNUP, signup_body(f"{local}@example.com"), timeout=self.timeout,
                headers={"Idempotency-Key": local} if self.idempotency else None,
            )  # fmt: skip
            with self._lock:
                self._answers.append(answer)
                if delay < -period:
                    self.late += 1

    def answers(self) -> list[Answer]:
        with self._lock:
            return sorted(self._answers, key=lambda a: a.sent_at)

    def stop(self) -> list[Answer]:
        self._stop.set()
        for worker in self._workers:
            worker.join(self.timeout + 5)
        return self.answers()


def p95(answers: Iterable[Answer]) -> float | None:
    """Client-side p95 (loadtests.stats, nearest rank) of the answers' times; None if none."""
    times = [a.ms for a in answers]
    return percentile(times, 95) if times else None


def between(answers: Iterable[Answer], start: float, end: float) -> list[Answer]:
    """Answers to requests sent in [start, end) (time.time())."""
    return [a for a in answers if start <= a.sent_at < end]


def status_counts(answers: Iterable[Answer]) -> Counter:
    return Counter(a.status for a in answers)


def other_answers(answers: Iterable[Answer]) -> str:
    """The answers that were not 202, e.g. "503x3 nonex1" ("none": no answer)."""
    counts = status_counts(a for a in answers if a.status != 202)
    return " ".join(f"{status or 'none'}x{n}" for status, n in sorted(counts.items()))


def backlog_recovery(
    accepted: Iterable[Answer], mails: dict[str, list[float]], fault_end: float
) -> float | None:
    """Seconds from the fault's end until every signup accepted up to then had its email.

    None when one of them never had it.
    """
    owed = [a.email for a in accepted if a.sent_at <= fault_end]
    if not owed or any(email not in mails for email in owed):
        return None
    return max(0.0, max(min(mails[email]) for email in owed) - fault_end)


class FaultDB:
    """Read-only looks at the scenario's database, and pg_terminate_backend on it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.url = database_url(name)

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        with psycopg.connect(self.url, connect_timeout=5) as conn:
            return list(conn.execute(sql, params))

    def outbox_states(self) -> dict[str, int]:
        return dict(self.rows("SELECT state, count(*) FROM messaging_outbox GROUP BY state"))

    def outbox_finished(self) -> bool:
        states = self.outbox_states()
        return not any(states.get(s) for s in ("pending", "sending"))

    def failed_rows(self) -> list[tuple]:
        """(id, kind, attempts, last_error, email) of failed outbox rows."""
        return self.rows(
            "SELECT o.id, o.kind, o.attempts, o.last_error, u.email FROM messaging_outbox o"
            " JOIN signup_user u ON u.id = o.user_id WHERE o.state = 'failed' ORDER BY o.id"
        )

    def incomplete_accounts(self) -> list[str]:
        """Users missing a profile or a wallet: a half-created account."""
        return [
            email
            for (email,) in self.rows(
                "SELECT u.email FROM signup_user u"
                " LEFT JOIN signup_profile p ON p.user_id = u.id"
                " LEFT JOIN signup_wallet w ON w.user_id = u.id"
                " WHERE p.id IS NULL OR w.id IS NULL"
            )
        ]

    def user_emails(self) -> set[str]:
        return {email.lower() for (email,) in self.rows("SELECT email FROM signup_user")}

    def idempotency_keys(self) -> dict[str, int]:
        return dict(self.rows("SELECT key, status_code FROM signup_idempotencykey"))

    def blip(self, seconds: float, every: float) -> int:
        """Drop every connection to the database (web, worker, relay), again and
        again for `seconds`: also the new ones, while they connect or query.
        Returns how many backends were terminated."""
        terminated = 0
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                [(count,)] = conn.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid()",
                    (self.name,),
                )
                terminated += count
                time.sleep(every)
        return terminated


class AdminSession:
    """A staff user's browser session on the real admin (cookies, CSRF token)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def get(self, path: str) -> tuple[str, str]:
        """(final URL after redirects, HTML)."""
        with self.opener.open(f"{self.base_url}{path}", timeout=10) as resp:
            return resp.geturl(), resp.read().decode()

    def login(self, email: str, password: str) -> None:
        _, page = self.get("/admin/login/?next=/admin/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        if token is None:
            raise AssertionError("no CSRF token on the admin login page")
        form = {
            "csrfmiddlewaretoken": token.group(1),
            "username": email,
            "password": password,
            "next": "/admin/",
        }
        data = urllib.parse.urlencode(form).encode()
        with self.opener.open(f"{self.base_url}/admin/login/", data=data, timeout=10) as resp:
            if "/admin/login/" in resp.geturl():
                raise AssertionError(f"admin login failed for {email}")


@dataclass
class Outcome:
    """One scenario's figures: one row of the FAULT REPORT."""

    scenario: str = "?"
    accepted: int = 0  # signups answered 202 (warm-up included)
    other: str = ""  # the other answers, e.g. "503x4"
    delivered: int = 0  # accepted addresses whose verification email arrived
    duplicates: int = 0  # addresses with more than one
    lost: int = 0  # accepted, never delivered within the wait
    recovery_s: float | None = None
    p95_fault_ms: float | None = None
    notes: list[str] = field(default_factory=list)
    passed: bool | None = None

    def count_mail(self, accepted: set[str], mails: dict[str, list[float]]) -> None:
        self.accepted = len(accepted)
        self.delivered = sum(1 for a in accepted if mails.get(a))
        self.lost = self.accepted - self.delivered
        self.duplicates = sum(1 for a in accepted if len(mails.get(a, ())) > 1)


def report_table(outcomes: list[Outcome]) -> str:
    def num(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    head = (
        f"{'scenario':<30}{'202':>6}{'other':>10}{'emails':>8}{'dup':>5}{'lost':>6}"
        f"{'recover s':>11}{'p95 fault ms':>14}  result"
    )
    lines = ["FAULT REPORT", head, "-" * len(head)]
    for o in sorted(outcomes, key=lambda o: o.scenario):  # names start with their number
        result = {True: "pass", False: "FAIL", None: "not run"}[o.passed]
        lines.append(
            f"{o.scenario:<30}{o.accepted:>6}{o.other or '-':>10}{o.delivered:>8}"
            f"{o.duplicates:>5}{o.lost:>6}{num(o.recovery_s, '.1f'):>11}"
            f"{num(o.p95_fault_ms, '.1f'):>14}  {result}"
        )
        lines += [f"    {note}" for note in o.notes]
    lines.append(
        "202: signups accepted; emails: accepted addresses whose verification email arrived;"
        " dup: addresses mailed more than once; lost: accepted, never mailed;"
        " recover: seconds from the fault's end until every signup accepted up to then"
        " had its email; p95 fault: client-side signup latency of requests sent during the fault."
    )
    return "\n".join(lines)


class AofRedisServer(RedisServer):
    """RedisServer with AOF on (appendfsync always): stopped and started, it
    comes back with its queues, acks and keys."""

    def start(self) -> None:
        argv = [
            shutil.which("redis-server") or "redis-server",
            *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir)),
            *("--save", "", "--appendonly", "yes", "--appendfsync", "always"),
        ]
        with open(self.workdir / "redis.log", "a") as log:
            # argv is ours: the redis-server binary and fixed flags.
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        import redis

        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
        try:
            deadline = time.monotonic() + 20
            while True:  # with AOF, LOADING until the file is read
                try:
                    if client.ping():
                        break
                except (redis.ConnectionError, redis.BusyLoadingError):
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on {self.port} did not answer (redis.log)")
                time.sleep(0.05)
        finally:
            client.close()


PG_BIN = os.environ.get("FAULTS_PG_BIN", "/usr/lib/postgresql/15/bin")


class PrivatePostgres:
    """A PostgreSQL cluster of one scenario's own: restarting it breaks nobody
    else's runs (the shared server on 5432 is used by other test runs)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="payshift-pg-"))
        self.data = self.dir / "data"
        shutil.chown(self.dir, "postgres", "postgres")

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *argv: str) -> None:
        # runuser: the server refuses to run as root. argv is ours (fixed binaries, our paths).
        subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=True,
                       capture_output=True, timeout=120)  # fmt: skip

    def _ctl(self, *args: str) -> None:
        self._as_postgres(f"{PG_BIN}/pg_ctl", "-D", str(self.data), "-w", "-t", "60", *args)

    def start(self) -> "PrivatePostgres":
        if not self.data.exists():
            self._as_postgres(
                f"{PG_BIN}/initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust",
                "--no-sync", "-E", "UTF8",
            )  # fmt: skip
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir}"
            " -c fsync=off -c max_connections=200"
        )
        self._ctl("-o", options, "-l", str(self.dir / "postgres.log"), "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # not running
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class PostfixMailbox:
    """A private Postfix's deliveries, read like ControlledSink.verification_mails();
    stands in for the scenario's sink (which it stops with the scenario)."""

    def __init__(self, postfix, sink: ControlledSink) -> None:
        self.postfix = postfix
        self.sink = sink

    def down(self) -> None:
        self.sink.down()

    def verification_mails(self) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for message in self.postfix.deliveries():
            if message["subject"] == VERIFICATION_SUBJECT:
                out.setdefault(message["to"], []).append(message["received_at"])
        return out
