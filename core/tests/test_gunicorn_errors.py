"""Gunicorn's own answers (a request it refuses before Django sees it) are
the API's JSON error shape, not HTML (docs/api.md, Errors): a request line
over 4,094 bytes, a header over 8,190 bytes, a malformed request line."""

import http.client
import json
import socket
import subprocess
import sys

import pytest

from conftest import ROOT, django_env, stop_process, wait_until
from core.testing import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real gunicorn started from the checkout, so ./gunicorn.conf.py applies."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    log = open(log_path, "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "gunicorn", "core.wsgi", "-b", f"127.0.0.1:{port}"),
            *("-w", "1", "--no-control-socket"),
        ],
        cwd=ROOT,
        env=django_env(RATE_LIMIT_PER_IP="off"),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def up():
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/v1/health/live")
            return conn.getresponse().status == 200
        except OSError:
            return False

    try:
        wait_until(up, timeout=30)
        yield port, log_path
    finally:
        stop_process(proc)
        log.close()


def raw(port: int, request: bytes) -> http.client.HTTPResponse:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(request)
    response = http.client.HTTPResponse(sock)
    response.begin()
    response.body = response.read()  # type: ignore[attr-defined]
    sock.close()
    return response


LONG_QUERY = "/api/v1/me/notifications?cursor=" + "a" * 5000


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (f"GET {LONG_QUERY} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode(), 414, "uri_too_long"),
        (
            b"GET /api/v1/me HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n",
            431,
            "headers_too_large",
        ),
        (b"GET /api/v1/me HTTP/1.1 extra\r\nHost: 127.0.0.1\r\n\r\n", 400, "bad_request"),
        (b"GET /api/v1/me HTTP/1.1\r\nBad Header: x\r\n\r\n", 400, "bad_request"),
    ],
    ids=["request-line-too-long", "header-too-large", "bad-request-line", "bad-header-name"],
)
def test_gunicorns_own_error_answers_are_json(server, request_bytes, status, code):
    port, _ = server
    response = raw(port, request_bytes)

    assert response.status == status
    assert response.getheader("Content-Type") == "application/json"
    body = json.loads(response.body)  # type: ignore[attr-defined]
    assert set(body) == {"detail", "code"}
    assert body["code"] == code
    assert body["detail"]


def test_a_long_query_through_http_client_is_414_json_and_still_logged(server):
    port, log_path = server
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", LONG_QUERY)
    response = conn.getresponse()

    assert response.status == 414
    assert response.getheader("Content-Type") == "application/json"
    assert json.loads(response.read())["code"] == "uri_too_long"
    # Gunicorn's own warning is kept (its handle_error runs as before).
    wait_until(lambda: "Invalid request from ip=127.0.0.1" in log_path.read_text(), timeout=5)
