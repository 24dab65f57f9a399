"""Benchmark fixtures, and the end-of-session table the CI log shows.

Everything is the production stack (core.settings with tox's environment):
Argon2id, PostgreSQL, the configured Dramatiq Redis broker. Only the per-IP
rate limit is off, because every request comes from one test client.
"""

import pytest
from django.contrib.auth.hashers import get_hasher, make_password

from benchmarks.data import PASSWORD
from benchmarks.gate import Row, format_table
from benchmarks.slow import slow_ms

ROWS = pytest.StashKey[list[Row]]()
PRODUCTION_HASHER = "signup.hashers.Argon2idHasher"


def pytest_configure(config: pytest.Config) -> None:
    config.stash[ROWS] = []
    json_path = config.getoption("benchmark_json", None)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)


@pytest.hookimpl(trylast=True)  # after pytest-benchmark's own tables
def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    rows = config.stash.get(ROWS, [])
    if not rows:
        return
    terminalreporter.write_sep("=", "performance gates (p95 budget from docs/api.md)")
    for line in format_table(rows):
        terminalreporter.write_line(line)
    terminalreporter.write_line(
        "queries: timed rows count statements sent through Django's cursor per call; "
        "query-count rows count all CaptureQueriesContext sees, BEGIN/COMMIT included."
    )


@pytest.fixture
def rows(request) -> list[Row]:
    """Append a Row to print it in the session's table."""
    return request.config.stash[ROWS]


@pytest.fixture(autouse=True)
def _bench_settings(settings):
    """One client sends everything: no per-IP limit. Never a test hasher."""
    settings.RATE_LIMIT_PER_IP = "off"
    assert settings.PASSWORD_HASHERS[0] == PRODUCTION_HASHER, settings.PASSWORD_HASHERS
    assert get_hasher().algorithm == "argon2"
    if slow_ms():
        settings.MIDDLEWARE = ["benchmarks.slow.SlowSignupMiddleware", *settings.MIDDLEWARE]


@pytest.fixture(scope="session")
def password_hash() -> str:
    """One real Argon2id hash, for rows whose creation is not what is measured."""
    return make_password(PASSWORD)
