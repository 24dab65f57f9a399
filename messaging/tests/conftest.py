"""Fixtures of the messaging tests: users and outbox rows, a private Redis
server that a test may stop and start, and a way to point this process's
broker (and cache) at it."""

import json
import shutil
from pathlib import Path

import dramatiq
import pytest
from django_dramatiq.middleware import DbConnectionsMiddleware
from dramatiq.brokers.redis import _scripts
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import CurrentMessage

from core.broker import fast_fail_redis
from core.testing import RedisServer
from messaging.models import Outbox
from signup.messages import VERIFICATION_EMAIL
from signup.models import User


@pytest.fixture
def mail_sink(mail_sink, settings):
    """The root mail_sink, with Django's SMTP backend really in use.

    Django's test set-up (pytest-django) swaps EMAIL_BACKEND for locmem, so
    without this nothing would reach the SMTP server in this process.
    """
    settings.EMAIL_BACKEND = "messaging.smtp.EmailBackend"
    return mail_sink


@pytest.fixture
def make_user():
    """A user with profile and wallet; no password hash (fast)."""
    count = iter(range(1, 1_000_000))

    def make(email: str | None = None, **extra) -> User:
        return User.objects.create_user(email or f"user{next(count)}@example.com", None, **extra)

    return make


@pytest.fixture
def make_row(make_user):
    def make(kind: str = VERIFICATION_EMAIL, user: User | None = None, **fields) -> Outbox:
        return Outbox.objects.create(kind=kind, user=user or make_user(), **fields)

    return make


def point_broker_at(monkeypatch, url: str) -> None:
    """Make this process's Dramatiq broker talk to another Redis.

    The broker's Lua scripts are bound to the client they were registered
    with, so replacing .client alone would still enqueue on the old server.
    """
    broker = dramatiq.get_broker()
    client = fast_fail_redis(url)
    monkeypatch.setattr(broker, "client", client)
    monkeypatch.setattr(
        broker, "scripts", {name: client.register_script(s) for name, s in _scripts.items()}
    )


def queued_ids(queue: str) -> list[int]:
    """The outbox ids carried by the messages waiting in a queue of the real broker."""
    broker = dramatiq.get_broker()
    raw = broker.client.hvals(f"{broker.namespace}:{queue}.msgs")
    return sorted(json.loads(message)["args"][0] for message in raw)


def dead_letter_count(queue: str) -> int:
    broker = dramatiq.get_broker()
    return broker.client.zcard(f"{broker.namespace}:{queue}.XQ")


@pytest.fixture
def private_redis(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed: the broker-outage tests need it")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def worker_log(tmp_path: Path) -> str:
    """Everything the test's worker subprocesses wrote (for failure messages)."""
    return "\n".join(p.read_text() for p in sorted(tmp_path.glob("worker-*.log")))


@pytest.fixture
def stub_broker():
    broker = StubBroker()  # Dramatiq's default middleware, Retries included
    broker.add_middleware(CurrentMessage())
    broker.add_middleware(DbConnectionsMiddleware())
    broker.emit_after("process_boot")
    yield broker
    broker.flush_all()
    broker.close()


@pytest.fixture
def stub_worker(stub_broker):
    worker = dramatiq.Worker(stub_broker, worker_timeout=50, worker_threads=1)
    worker.start()
    yield worker
    worker.stop()
