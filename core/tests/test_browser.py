"""A real browser (headless Chromium, Debian's package) renders the API docs and
the admin from the app's own static files, under the app's Content-Security-
Policy: Swagger UI lists the operations, and the console reports no blocked
script or style and no missing file."""

import re
import subprocess

import pytest

from core.testing import require_binary

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CONSOLE = re.compile(r":CONSOLE[^\]]*\] (.*)")


def render(url: str, profile) -> tuple[str, list[str]]:
    """The DOM after scripts ran, and what the page said on the console."""
    chromium = require_binary("chromium")
    result = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",  # root in CI
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=15000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, CONSOLE.findall(result.stderr)


def problems(console: list[str]) -> list[str]:
    words = ("Content Security Policy", "Failed to load resource", "Refused to")
    return [line for line in console if any(word in line for word in words)]


def test_swagger_ui_renders_the_operations_offline(live_web, tmp_path):
    dom, console = render(f"{live_web.url}/api/v1/docs", tmp_path / "chromium")

    paths = set(re.findall(r'class="opblock-summary-path" data-path="([^"]+)"', dom))
    assert {"/api/v1/signup", "/api/v1/signup/verify", "/api/v1/signup/resend"} <= paths, dom[:500]
    assert problems(console) == []


def test_admin_login_renders_with_its_styles(live_web, tmp_path):
    dom, console = render(f"{live_web.url}/admin/login/", tmp_path / "chromium")

    assert 'id="login-form"' in dom
    assert "Payshift signup" in dom
    assert "admin/css/base.css" in dom
    assert problems(console) == []
