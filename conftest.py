"""Shared fixtures: real PostgreSQL (pytest-django), real Redis, a real SMTP server.

The settings are the production ones (core.settings) with the environment
that tox sets: PostgreSQL DATABASE_URL, a dedicated Redis database, DEBUG off.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import dramatiq
import pytest
from django.test import Client

from core.breaker import broker_breaker, cache_breaker
from messaging.sink import MailSink

ROOT = Path(__file__).resolve().parent


def pytest_sessionstart(session):
    """collectstatic once, as a deployment does: WhiteNoise serves STATIC_ROOT
    (DEBUG is off), here and in the gunicorn processes tests start. Before
    collection: a test module may build the WSGI application on import."""
    import tempfile

    from django.core.management import call_command
    from django.test import override_settings

    root = Path(tempfile.mkdtemp(prefix="payshift-static-"))
    os.environ["STATIC_ROOT"] = str(root)
    session.config._static_override = override_settings(STATIC_ROOT=root)
    session.config._static_override.enable()
    call_command("collectstatic", interactive=False, verbosity=0)


def pytest_sessionfinish(session):
    import shutil

    override = getattr(session.config, "_static_override", None)
    if override is not None:
        override.disable()
        shutil.rmtree(os.environ.pop("STATIC_ROOT"), ignore_errors=True)


@pytest.fixture(autouse=True)
def _clean_redis():
    """Each test starts with an empty Redis database and closed breakers."""
    broker = dramatiq.get_broker()
    broker.client.flushdb()
    broker_breaker.reset()
    cache_breaker.reset()
    yield
    broker_breaker.reset()
    cache_breaker.reset()


@pytest.fixture
def mail_sink(settings):
    """A real SMTP server (aiosmtpd) that Django's SMTP backend sends to."""
    with MailSink() as sink:
        # pytest-django swaps in the locmem backend; this test wants real SMTP.
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = sink.port
        yield sink


class JsonClient(Client):
    """Sends a fixed X-Request-ID, as a client that traces its calls does:
    the answer echoes it, so the tests that compare whole answers (headers
    too) between accounts see no per-request random value."""

    def __init__(self, **defaults):
        defaults.setdefault("HTTP_X_REQUEST_ID", "test-client-request")
        super().__init__(**defaults)

    def post(self, path: str, data=None, content_type=None, **extra):
        """With no data and no content type, a POST with no body at all, as
        `curl -X POST` sends (Django's client would send an empty multipart
        form, which the API refuses as not JSON: 415)."""
        if data is None and content_type is None:
            return self.generic("POST", path, b"", **extra)
        kwargs = {} if content_type is None else {"content_type": content_type}
        return super().post(path, data, **kwargs, **extra)

    def post_json(self, path: str, data=None, **extra):
        body = data if isinstance(data, str | bytes) else json.dumps(data)
        return self.post(path, body, content_type="application/json", **extra)


@pytest.fixture
def api():
    return JsonClient()


@pytest.fixture
def broker_queue_size():
    """Messages waiting in a Dramatiq queue of the real Redis broker."""
    broker = dramatiq.get_broker()

    def size(queue: str) -> int:
        return broker.client.llen(f"{broker.namespace}:{queue}")

    return size


def django_env(**overrides) -> dict:
    """Environment for a child process (worker, gunicorn) sharing the test database."""
    from django.db import connection

    db = connection.settings_dict
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        DJANGO_SETTINGS_MODULE="core.settings",
        PYTHONUNBUFFERED="1",
    )
    env.update({k: str(v) for k, v in overrides.items()})
    return env


@pytest.fixture
def start_worker(tmp_path):
    """Start `manage.py rundramatiq` (the deployment's command) as a subprocess."""
    procs: list[subprocess.Popen] = []

    def start(**env) -> subprocess.Popen:
        log = open(tmp_path / f"worker-{len(procs)}.log", "w")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "rundramatiq", "--processes", "1", "--threads", "4"],
            cwd=ROOT,
            env=django_env(**env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        stop_process(proc)


def stop_process(proc: subprocess.Popen, timeout: float = 15) -> None:
    import signal

    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")
