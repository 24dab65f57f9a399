"""The container image, built here from the debootstrap base, answers the
contract: migrate (one-off), then the web (the image's default command) and
the worker (same image, rundramatiq) with --network host against the
machine's PostgreSQL (a scratch database) and Redis: health 200, signup 202,
the code mailed by the worker to an SMTP sink this test runs, verify 200.
Also: its size, its user, no compiler, no test code; both processes run with
a read-only root file system (/tmp a tmpfs), as the Kubernetes manifests run
them.

Slow (a docker build: ~1 min cached base, ~3 min cold): only in
`tox -e deploy` (PAYSHIFT_IMAGE_TEST=1), which starts dockerd
(scripts/docker-daemon) and makes the base (scripts/docker-base).
"""

import json
import os
import smtplib
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import psycopg
import pytest

from core.testing import free_port
from deploy.tests.documented import ROOT
from messaging.sink import MailSink

if os.environ.get("PAYSHIFT_IMAGE_TEST") != "1":
    pytest.skip(
        "the image test runs in tox -e deploy (PAYSHIFT_IMAGE_TEST=1)", allow_module_level=True
    )

pytestmark = pytest.mark.slow

TAG = os.environ.get("PAYSHIFT_IMAGE_TAG", "payshift-signup:test")
SIZE_BUDGET_MB = 400
PG_ADMIN_URL = os.environ.get("PAYSHIFT_IMAGE_PG", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_BASE = os.environ.get("PAYSHIFT_IMAGE_REDIS", "redis://127.0.0.1:6379/14")


def run(*args: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=check, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def image() -> str:
    subprocess.run([str(ROOT / "scripts" / "docker-daemon")], check=True)
    started = time.monotonic()
    base = run(str(ROOT / "scripts" / "docker-base")).stdout.strip().splitlines()[-1]
    base_seconds = time.monotonic() - started
    started = time.monotonic()
    build = subprocess.run(
        [
            "docker",
            "build",
            "--network",
            "host",
            "--build-arg",
            f"BASE_IMAGE={base}",
            "--target",
            "runtime",
            "-t",
            TAG,
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    print(
        f"\nIMAGE base {base} in {base_seconds:.0f} s; build in {time.monotonic() - started:.0f} s"
    )
    return TAG


def in_image(image: str, script: str) -> str:
    return run(
        "docker", "run", "--rm", "--network", "none", "--entrypoint", "sh", image, "-c", script
    ).stdout


def test_size(image):
    size = int(run("docker", "image", "inspect", "-f", "{{.Size}}", image).stdout)
    print(f"\nIMAGE SIZE {size / 1e6:.0f} MB ({size} bytes); budget {SIZE_BUDGET_MB} MB")
    assert size < SIZE_BUDGET_MB * 1e6


def test_runs_as_a_user_not_root(image):
    config = json.loads(run("docker", "image", "inspect", "-f", "{{json .Config}}", image).stdout)
    assert config["User"] == "10001:10001"
    assert in_image(image, "id -u; id -g").split() == ["10001", "10001"]
    assert config["Healthcheck"]["Test"] == ["CMD", "python", "/app/healthcheck.py"]
    assert "8000/tcp" in config["ExposedPorts"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"


def test_no_compiler(image):
    found = in_image(
        image,
        "for c in gcc cc c++ g++ clang make ld as; do command -v $c; done;"
        " ls /usr/bin/*gcc* /usr/bin/x86_64-linux-gnu-* 2>/dev/null; true",
    )
    assert found.strip() == ""


def test_no_test_code(image):
    found = in_image(
        image,
        "cd /opt/venv/lib/python3.11/site-packages &&"
        " find core signup messaging /app -name tests -o -name 'test_*.py' -o -name conftest.py;"
        " ls -d benchmarks loadtests deploy 2>/dev/null; ls /app; true",
    )
    lines = found.split()
    assert sorted(lines) == ["healthcheck.py", "manage.py", "staticfiles"], found


def test_static_files_collected(image):
    found = in_image(image, "ls /app/staticfiles/admin/css/base.css /app/staticfiles/ninja")
    assert "base.css" in found


@pytest.fixture
def database():
    name = f"payshift_image_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def http(method: str, url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_contract_with_host_network(image, database):
    port = free_port()
    run_id = uuid.uuid4().hex[:8]
    containers = []
    with MailSink() as sink:
        env = {
            "SECRET_KEY": f"image-test-{uuid.uuid4().hex}",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": database,
            "REDIS_URL": REDIS_BASE,
            "DRAMATIQ_NAMESPACE": f"payshift-image-{run_id}",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(sink.port),
            "PORT": str(port),
            "LOG_FORMAT": "json",
        }
        flags = [arg for key, value in env.items() for arg in ("-e", f"{key}={value}")]
        tmpfs = "/tmp:rw,nosuid,nodev"  # noqa: S108 (the container's /tmp, as Kubernetes' emptyDir)
        common = ["--network", "host", "--read-only", "--tmpfs", tmpfs, *flags]
        try:
            migrate = run(
                "docker",
                "run",
                "--rm",
                *common,
                image,
                "python",
                "manage.py",
                "migrate",
                "--no-input",
                check=False,
            )
            assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
            for role, command in (
                ("web", []),
                (
                    "worker",
                    ["python", "manage.py", "rundramatiq", "--processes", "1", "--threads", "2"],
                ),
            ):
                name = f"payshift-image-{role}-{run_id}"
                run("docker", "run", "-d", "--name", name, *common, image, *command)
                containers.append(name)
            web = f"http://127.0.0.1:{port}"

            deadline = time.monotonic() + 90
            status = 0
            while time.monotonic() < deadline:
                try:
                    status, body = http("GET", f"{web}/api/v1/health")
                    if status == 200:
                        break
                except (urllib.error.URLError, ConnectionError):
                    pass
                time.sleep(0.5)
            assert status == 200, logs(containers)
            assert http("GET", f"{web}/api/v1/health/ready")[0] == 200
            with urllib.request.urlopen(f"{web}/static/admin/css/base.css", timeout=10) as answer:  # noqa: S310
                assert answer.status == 200  # WhiteNoise, from the collected files

            # The image's HEALTHCHECK, run now rather than after its interval.
            for name in containers:
                probe = run("docker", "exec", name, "python", "/app/healthcheck.py", check=False)
                assert probe.returncode == 0, (name, probe.stderr, logs(containers))

            email = f"ada-{run_id}@example.com"
            status, body = http(
                "POST",
                f"{web}/api/v1/signup",
                {"email": email, "password": "correct horse battery staple"},
            )
            assert status == 202, body
            assert body["status"] == "verification_pending"
            token = body["verification_token"]

            mail = sink.wait_for(email, timeout=60)[0]
            code = mail["code"]
            assert code, mail
            assert len(code) == 6, mail

            status, body = http(
                "POST",
                f"{web}/api/v1/signup/verify",
                {"email": email, "code": code, "verification_token": token},
            )
            assert (status, body) == (200, {"status": "verified", "email": email})

            # One-off commands from the same image.
            queue = run(
                "docker",
                "run",
                "--rm",
                *common,
                image,
                "python",
                "manage.py",
                "queue_status",
                check=False,
            )
            assert queue.returncode == 0, queue.stdout + queue.stderr
            requeue = run(
                "docker",
                "run",
                "--rm",
                *common,
                image,
                "python",
                "manage.py",
                "outbox_requeue",
                "--all-failed",
                "--dry-run",
                check=False,
            )
            assert requeue.returncode == 0, requeue.stdout + requeue.stderr

            stats = run(
                "docker", "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}", *containers
            ).stdout
            print(f"\nIMAGE CONTRACT health 200, signup 202, mail code, verify 200\n{stats}")
        finally:
            for name in containers:
                run("docker", "rm", "-f", name, check=False)


def logs(containers: list[str]) -> str:
    return "\n".join(
        f"--- {name}\n"
        + run("docker", "logs", "--tail", "40", name, check=False).stdout
        + run("docker", "logs", "--tail", "40", name, check=False).stderr
        for name in containers
    )


def test_mailsink_target(image):
    """compose.yaml's mail service: the project's sink from the same Dockerfile,
    on every interface, printing the mail with its code."""
    tag = f"{TAG}-mailsink"
    run(
        "docker",
        "build",
        "--network",
        "host",
        "--build-arg",
        f"BASE_IMAGE={run(str(ROOT / 'scripts' / 'docker-base')).stdout.split()[-1]}",
        "--target",
        "mailsink",
        "-t",
        tag,
        str(ROOT),
    )
    port = free_port()
    name = f"payshift-image-mail-{uuid.uuid4().hex[:8]}"
    run(
        "docker",
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "host",
        "-e",
        f"MAILSINK_PORT={port}",
        tag,
    )
    try:
        deadline = time.monotonic() + 30
        while run("docker", "exec", name, "python", "/app/healthcheck.py", check=False).returncode:
            assert time.monotonic() < deadline, run("docker", "logs", name, check=False).stderr
            time.sleep(0.5)
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.sendmail("a@example.com", ["b@example.com"], "Subject: code\n\n123456\n")
        time.sleep(0.5)
        assert "123456" in run("docker", "logs", name).stdout
    finally:
        run("docker", "rm", "-f", name, check=False)
