"""compose.yaml: the services, their health checks and start order, and every
variable it gives the service one the service reads (docs/configuration.md).

Offline and fast (the default run). `docker compose config` also checks it
where the compose plugin is installed (not from Debian's packages here).
"""

import re
import shutil
import subprocess

import pytest
import yaml

from deploy.tests.documented import GUNICORN_VARIABLES, ROOT, documented_variables

COMPOSE = ROOT / "compose.yaml"
APP_SERVICES = {"migrate", "web", "worker"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_names_every_service(compose):
    assert set(compose["services"]) == {"postgres", "redis", "mail", "migrate", "web", "worker"}
    assert compose["services"]["postgres"]["image"].startswith("postgres:")
    assert compose["services"]["redis"]["image"].startswith("redis:")


def test_one_image_for_web_worker_and_migrate(compose):
    services = compose["services"]
    images = {services[name]["image"] for name in APP_SERVICES}
    assert images == {"payshift-signup:dev"}
    for name in APP_SERVICES:
        assert services[name]["build"]["target"] == "runtime"
        assert services[name]["env_file"] == [{"path": ".env", "required": False}]
    assert services["mail"]["build"]["target"] == "mailsink"
    assert "command" not in services["web"]  # the image's gunicorn
    assert services["worker"]["command"][:3] == ["python", "manage.py", "rundramatiq"]
    assert services["migrate"]["command"][:3] == ["python", "manage.py", "migrate"]
    assert services["migrate"]["restart"] == "no"


def test_health_checks_and_start_order(compose):
    services = compose["services"]
    for name in ("postgres", "redis", "mail", "web", "worker"):
        check = services[name]["healthcheck"]
        assert check["test"][0] == "CMD", name
        assert check["interval"], name
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("web", "worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}
        assert depends["redis"] == {"condition": "service_healthy"}
    assert services["worker"]["depends_on"]["mail"] == {"condition": "service_healthy"}


def test_every_variable_is_one_the_service_reads(compose):
    known = documented_variables() | GUNICORN_VARIABLES
    for name in APP_SERVICES:
        environment = compose["services"][name]["environment"]
        assert set(environment) <= known, set(environment) - known
    environment = compose["services"]["web"]["environment"]
    # Compose's own services, not the machine's.
    assert environment["DATABASE_URL"].startswith("postgres://payshift:payshift@postgres:5432/")
    assert environment["REDIS_URL"] == "redis://redis:6379/0"
    assert environment["EMAIL_HOST"] == "mail"
    # The mail sink listens on what the worker sends to.
    assert compose["services"]["mail"]["environment"]["MAILSINK_PORT"] == environment["EMAIL_PORT"]


def test_interpolated_defaults_mirror_env_example(compose):
    """${VAR:-default}: the variable's own name, and a default that .env.example
    states where it states one (development overrides are listed here)."""
    example = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.match(r"^# ([A-Z][A-Z0-9_]+)=(\S*)", line)
        if match:
            example[match.group(1)] = match.group(2)
    development = {"SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "SECURE_COOKIES"}
    environment = compose["services"]["web"]["environment"]
    for name, value in environment.items():
        match = re.fullmatch(r"\$\{([A-Z0-9_]+):-(.*)\}", str(value))
        if not match:
            continue
        assert match.group(1) == name
        if name not in development:
            assert match.group(2) == example[name], name


@pytest.mark.skipif(
    not shutil.which("docker")
    or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0,
    reason="the docker compose plugin is not installed",
)
def test_docker_compose_config():
    subprocess.run(["docker", "compose", "-f", str(COMPOSE), "config", "--quiet"], check=True)
