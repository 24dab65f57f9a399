"""What a browser and an adopter meet at the edges: docs assets, admin CSS with
DEBUG off, CORS, JSON 404/405 under /api/, the CSP header."""

import json
import re

import pytest
from django.test import Client

from signup.models import User

ASSET = re.compile(r"""<(?:script|link)\b[^>]*?(?:src|href)=["']([^"']+)["']""", re.IGNORECASE)


def assets(html: str) -> list[str]:
    return [url for url in ASSET.findall(html) if not url.startswith("data:")]


def test_docs_page_uses_only_assets_the_app_serves(settings):
    assert settings.DEBUG is False
    client = Client()
    page = client.get("/api/v1/docs")

    assert page.status_code == 200
    urls = assets(page.content.decode())
    assert any(u.endswith("swagger-ui-bundle.js") for u in urls), urls
    assert any(u.endswith(".css") for u in urls), urls
    for url in urls:
        assert url.startswith("/static/"), f"{url} is not served by this app (a CDN?)"
        response = client.get(url)
        assert response.status_code == 200, url
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert len(body) > 100, url
    assert client.get("/api/v1/openapi.json").status_code == 200


@pytest.mark.django_db
def test_admin_is_styled_with_debug_off(settings):
    assert settings.DEBUG is False
    client = Client()
    login = client.get("/admin/login/")

    stylesheets = [u for u in assets(login.content.decode()) if u.endswith(".css")]
    assert any(u.endswith("admin/css/base.css") for u in stylesheets), stylesheets
    for url in stylesheets:
        response = client.get(url)
        assert response.status_code == 200, url
        assert response["Content-Type"].startswith("text/css"), url
    assert b"Payshift signup" in login.content  # branded header


@pytest.mark.django_db
def test_admin_has_no_empty_dramatiq_tasks_page():
    client = Client()
    client.force_login(User.objects.create_superuser("root@payshift.test", None))
    index = client.get("/admin/")
    assert index.status_code == 200
    assert b"django_dramatiq" not in index.content
    assert b"Outbox rows" in index.content


@pytest.mark.parametrize("path", ["/api/v1/docs", "/admin/login/"])
@pytest.mark.django_db
def test_pages_send_a_content_security_policy(path):
    policy = Client().get(path)["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "https:" not in policy


def preflight(client: Client, origin: str):
    return client.options(
        "/api/v1/signup",
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type,idempotency-key",
    )


def test_cors_preflight_is_answered_for_an_allowed_origin(settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.payshift.test"]
    response = preflight(Client(), "https://app.payshift.test")

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "https://app.payshift.test"
    assert "POST" in response["Access-Control-Allow-Methods"]
    assert "idempotency-key" in response["Access-Control-Allow-Headers"]


def test_cors_allows_no_origin_by_default(settings):
    assert settings.CORS_ALLOWED_ORIGINS == []  # the environment sets none
    response = preflight(Client(), "https://evil.example")
    assert "Access-Control-Allow-Origin" not in response


def test_cors_headers_on_an_actual_answer(settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.payshift.test"]
    response = Client().get("/api/v1/health/nope", HTTP_ORIGIN="https://app.payshift.test")
    assert response["Access-Control-Allow-Origin"] == "https://app.payshift.test"
    assert "Retry-After" in response["Access-Control-Expose-Headers"]


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v2/signup", "/api/", "/api/v1/signup/x"])
def test_unknown_api_paths_answer_json_404(path):
    response = Client().get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {
        "detail": "No such path. See /api/v1/docs for the endpoints.",
        "code": "not_found",
    }


@pytest.mark.parametrize(
    ("method", "path"), [("get", "/api/v1/signup"), ("delete", "/api/v1/health")]
)
def test_wrong_method_answers_json_405(method, path):
    response = getattr(Client(), method)(path)
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert body["code"] == "method_not_allowed"
    assert method.upper() in body["detail"]
    assert "Allow" in response


def test_pages_outside_the_api_keep_html_404():
    response = Client().get("/nope")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_every_answer_carries_a_request_id():
    mine = Client().get("/api/v1/nope", HTTP_X_REQUEST_ID="client-trace-0001")
    assert mine["X-Request-ID"] == "client-trace-0001"
    made = Client().get("/api/v1/nope", HTTP_X_REQUEST_ID="bad id\\n")
    assert re.fullmatch(r"[0-9a-f]{32}", made["X-Request-ID"])


def test_a_bad_host_under_the_api_answers_json_too(settings):
    settings.ALLOWED_HOSTS = ["api.payshift.test"]
    response = Client().get("/api/v1/health", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert json.loads(response.content)["code"] == "bad_request"
