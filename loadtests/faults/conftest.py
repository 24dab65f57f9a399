"""Fixtures of the fault scenarios and the FAULT REPORT.

Each scenario gets fresh real processes (loadtests.stack.Stack): PostgreSQL
database payshift_faults, gunicorn, `manage.py rundramatiq` with its relay,
a private redis-server on a free port, and an SMTP sink in this process.
The report (one row per scenario) is printed at the end of the session and
written to results/faults/report.txt.
"""

import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from core.testing import RedisServer, require_binary
from loadtests.faults.balancer import Nginx
from loadtests.faults.harness import (
    Answer,
    ControlledSink,
    FaultDB,
    Outcome,
    SignupLoad,
    report_table,
    wait_until,
)
from loadtests.stack import ROOT, Stack

RESULTS = ROOT / "results" / "faults"
DB_NAME = os.environ.get("FAULTS_DB_NAME", "payshift_faults")
WEB_WORKERS = 2 * (os.cpu_count() or 1)
OUTCOMES: list[Outcome] = []
SBIN_NGINX = Path("/usr/sbin/nginx")  # Debian's, off a non-root user's PATH

logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd: a line per SMTP command


@pytest.fixture(autouse=True)
def _clean_redis():
    """Replaces the root conftest's: these tests use only their private Redis."""
    return


@dataclass
class Scenario:
    """The running processes of one scenario and what it measured."""

    stack: Stack
    sink: ControlledSink
    redis: RedisServer
    db: FaultDB
    outcome: Outcome
    warmed: list[str] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)  # every row this test reports

    def add_outcome(self, name: str) -> Outcome:
        """A further report row (a second part of the scenario)."""
        outcome = Outcome(scenario=name)
        OUTCOMES.append(outcome)
        self.outcomes.append(outcome)
        return outcome

    @property
    def port(self) -> int:
        return self.stack.port

    def load(self, rate: float = 8.0, port: int | None = None, **options) -> SignupLoad:
        """Signups to the first web node, or to port (e.g. a balancer's)."""
        prefix = f"{self.outcome.scenario.split()[0]}-{time.time_ns() % 10**9}"
        return SignupLoad(port or self.port, rate=rate, prefix=prefix, **options).start()

    def expected(self, answers: list[Answer], *, warm_up: bool = True) -> set[str]:
        """Addresses that were answered 202: each is owed exactly one email."""
        owed = {a.email for a in answers if a.status == 202}
        return owed | set(self.warmed) if warm_up else owed

    def settle(
        self,
        answers: list[Answer],
        *,
        timeout: float,
        quiet: float = 3.0,
        outcome: Outcome | None = None,
        warm_up: bool = True,
    ) -> dict:
        """Wait (bounded) for every owed email and a finished outbox, then count.

        quiet: a further wait so that a late duplicate shows up in the count.
        warm_up: the warm-up's signups are owed their email too.
        """
        outcome = outcome or self.outcome
        owed = self.expected(answers, warm_up=warm_up)

        def done() -> bool:
            mails = self.sink.verification_mails()
            return all(a in mails for a in owed) and self.db.outbox_finished()

        started = time.monotonic()
        finished = wait_until(done, timeout=timeout)
        waited = time.monotonic() - started
        time.sleep(quiet)
        mails = self.sink.verification_mails()
        outcome.count_mail(owed, mails)
        states = self.db.outbox_states()
        outcome.notes.append(
            f"after the load: waited {waited:.1f} s for the mail"
            f" ({'done' if finished else 'TIMED OUT'}); outbox {dict(sorted(states.items()))}"
        )
        return mails

    def check_settled(self) -> None:
        """The invariants of every scenario: nothing lost, nothing stuck, no half account."""
        for outcome in self.outcomes:
            assert outcome.lost == 0, f"{outcome.scenario}: {outcome.lost} signup(s) got no email"
        states = self.db.outbox_states()
        left = {s: states.get(s, 0) for s in ("pending", "sending", "failed")}
        assert not any(left.values()), f"outbox rows left unfinished: {left}"
        assert self.db.incomplete_accounts() == []


@pytest.fixture
def scenario(request, tmp_path):
    """Start the processes: `scenario("name", **env)`; env adds to the service's environment.

    redis_server_class: e.g. harness.AofRedisServer for a Redis that keeps its data.
    broker_url: amqp://... runs the service on RabbitMQ (the private Redis stays
    the rate-limit cache).
    web_nodes, worker_nodes: separate gunicorn masters (ports stack.urls) and
    rundramatiq processes (stack.procs "worker", "worker1", ...).
    web_config: a gunicorn config file for the web nodes (e.g. DELAY_CONF).
    """
    results = RESULTS / request.node.name
    shutil.rmtree(results, ignore_errors=True)
    results.mkdir(parents=True)
    started: list[Scenario] = []

    def start(
        name: str,
        redis_server_class: type[RedisServer] = RedisServer,
        broker_url: str = "",
        web_nodes: int = 1,
        worker_nodes: int = 1,
        web_config: str = "",
        **env,
    ) -> Scenario:
        outcome = Outcome(scenario=name)
        OUTCOMES.append(outcome)
        redis_server = redis_server_class(tmp_path)
        redis_server.start()
        sink = ControlledSink(results / "mail.jsonl")
        sink.up()
        stack = Stack(
            results=results,
            web_workers=WEB_WORKERS,
            db_name=DB_NAME,
            redis_url=redis_server.url,
            broker_url=broker_url,
            namespace="payshift-faults",
            extra_env={k: str(v) for k, v in env.items()},
            start_sink=False,
            smtp_port=sink.port,
            web_nodes=web_nodes,
            worker_nodes=worker_nodes,
            web_config=web_config,
        )
        current = Scenario(stack, sink, redis_server, FaultDB(DB_NAME), outcome)
        current.outcomes.append(outcome)
        request.node.fault_outcomes = current.outcomes
        started.append(current)
        stack.start()
        current.warmed = stack.warm_up()
        return current

    yield start
    for current in started:
        current.stack.stop()
        current.sink.down()
        current.redis.stop()


@pytest.fixture
def balancer(request):
    """nginx in front of ports: `balancer(ports)` (loadtests.faults.balancer); stopped
    at the end. Where nginx is missing: skipped, a failure in CI (scripts/services installs it)."""
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if SBIN_NGINX.exists() else "")
    binary = binary or require_binary("nginx")  # skips, or fails in CI
    started: list[Nginx] = []

    def start(ports: list[int], **options) -> Nginx:
        nginx = Nginx(RESULTS / request.node.name, ports, binary=binary, **options).start()
        started.append(nginx)
        return nginx

    yield start
    for nginx in started:
        nginx.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        for outcome in getattr(item, "fault_outcomes", []):
            outcome.passed = report.passed
    return report


def pytest_terminal_summary(terminalreporter):
    if not OUTCOMES:
        return
    text = report_table(OUTCOMES)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "report.txt").write_text(text + "\n")
    terminalreporter.write_sep("=", "FAULT REPORT")
    for line in text.splitlines()[1:]:
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"(also in {RESULTS / 'report.txt'})")
