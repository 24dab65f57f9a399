"""Bodies under /api/ (issue 8, point 5): JSON only (415 otherwise), and chunked
bodies read properly or refused with the right status (core.bodies)."""

import http.client
import io
import json
import socket
import subprocess
import sys

import pytest

from conftest import ROOT, django_env, stop_process, wait_until
from core.testing import free_port
from signup.models import User
from signup.tests.conftest import PASSWORD, RESEND, SIGNUP, VERIFY, row_counts

BODY = json.dumps({"email": "ada@example.com", "password": PASSWORD})
ENDPOINTS = [SIGNUP, VERIFY, RESEND]
# Every operation that takes a body (docs/api.md): the accounts half too.
BODY_OPERATIONS = [
    *(("POST", path) for path in ENDPOINTS),
    *(
        ("POST", f"/api/v1/auth/{path}")
        for path in ("login", "code", "code/verify", "password/reset", "password/reset/confirm")
    ),
    ("PATCH", "/api/v1/me"),
]


@pytest.fixture(autouse=True)
def _no_ip_limit(settings):
    settings.RATE_LIMIT_PER_IP = "off"


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path"), BODY_OPERATIONS)
@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain; charset=utf-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "application/jsonp",
        "application/xml",
        "",
    ],
)
def test_a_body_that_is_not_application_json_is_415(client, method, path, content_type):
    before = row_counts()
    extra = {"CONTENT_TYPE": content_type} if content_type else {}
    response = client.generic(method, path, BODY, **extra)

    assert response.status_code == 415, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "unsupported_media_type"
    assert "application/json" in response.json()["detail"]
    assert row_counts() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"]
)
def test_application_json_with_or_without_charset_is_accepted(client, content_type):
    response = client.post(SIGNUP, BODY, content_type=content_type)

    assert response.status_code == 202, response.content
    assert User.objects.count() == 1


@pytest.mark.django_db
def test_health_and_other_gets_are_not_affected(client):
    assert client.get("/api/v1/health").status_code in (200, 503)


def chunked(client, path: str, body: bytes, content_type: str = "application/json"):
    """A chunked request as a WSGI server hands it to Django: no
    Content-Length, Transfer-Encoding: chunked, wsgi.input de-chunked."""
    return client.generic(
        "POST",
        path,
        b"",
        CONTENT_TYPE=content_type,
        CONTENT_LENGTH="",
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": io.BytesIO(body)},
    )


@pytest.mark.django_db
def test_a_chunked_json_body_is_read(client):
    response = chunked(client, SIGNUP, BODY.encode())

    assert response.status_code == 202, response.content
    assert User.objects.get().email == "ada@example.com"


@pytest.mark.django_db
def test_a_chunked_body_over_the_limit_is_413(client):
    before = row_counts()
    response = chunked(client, SIGNUP, b'{"email": "' + b"a" * (1024 * 1024) + b'"}')

    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"
    assert row_counts() == before


@pytest.mark.django_db
def test_a_chunked_body_that_is_not_json_is_415(client):
    response = chunked(client, SIGNUP, b"email=ada", "application/x-www-form-urlencoded")

    assert response.status_code == 415


@pytest.mark.django_db
def test_content_length_over_the_limit_is_413_before_anything_reads_it(client):
    response = client.post(SIGNUP, "x" * (64 * 1024 + 1), content_type="application/json")

    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"


@pytest.fixture
def gunicorn(tmp_path):
    port = free_port()
    log = open(tmp_path / "gunicorn.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "core.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1"],
        cwd=ROOT,
        env=django_env(RATE_LIMIT_PER_IP="off"),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def up():
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/v1/health")
            conn.getresponse().read()
            return True
        except OSError:
            return False

    wait_until(up, timeout=30)
    yield port
    stop_process(proc)


def post_chunked(port: int, body: bytes) -> tuple[int, dict]:
    """POST body in 4 KiB chunks on a raw socket; the server may answer (and
    close) before the last chunk, as it should for a body over the limit."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            f"POST {SIGNUP} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n".encode()
        )
        try:
            for i in range(0, len(body), 4096):
                chunk = body[i : i + 4096]
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, json.loads(response.read())


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_chunked_bodies_through_gunicorn(gunicorn):
    """The real thing: a chunked body is read (it was "not valid JSON"), and
    a 1 MB chunked body is 413 (it was 400)."""
    status, body = post_chunked(gunicorn, BODY.encode())
    assert body.pop("verification_token")
    assert (status, body) == (202, {"status": "verification_pending", "email": "ada@example.com"})

    status, body = post_chunked(gunicorn, b'{"email": "' + b"a" * (1024 * 1024) + b'"}')
    assert status == 413
    assert body["code"] == "body_too_large"
