"""Silk in the loop: /silk/ is staff-only, and silk_nplusone catches an N+1.

Real requests (signup, verify, resend, health) go through Silk's middleware,
then the command must pass them; a view planted here, one query per user,
must fail it. Silk's settings are read at import, so this needs SILK_ENABLED=1
in the pytest process's environment: tox -e bench runs this file on its own.
"""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import path

import core.urls
from benchmarks.data import PASSWORD, fresh_email, unverified_user
from signup.codes import verification_code_issue
from signup.models import User, VerificationCode

ROOT = Path(__file__).resolve().parent.parent
PLANTED = "/bench/n-plus-one"
PLANTED_USERS = 10
REAL_PATHS = {
    "/api/v1/signup",
    "/api/v1/signup/verify",
    "/api/v1/signup/resend",
    "/api/v1/health",
}


def n_plus_one(request: HttpRequest) -> JsonResponse:
    """The planted defect: a COUNT query per user instead of one annotated query."""
    return JsonResponse({u.email: u.codes.count() for u in User.objects.order_by("pk")})


urlpatterns = [path(PLANTED.lstrip("/"), n_plus_one), *core.urls.urlpatterns]

pytestmark = [
    pytest.mark.skipif(
        not settings.SILK_ENABLED, reason="needs SILK_ENABLED=1 (tox -e bench runs it that way)"
    ),
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls(__name__),
]


def run_command(**options) -> tuple[str, bool]:
    """silk_nplusone in this process: (its output, whether it found an N+1)."""
    out = io.StringIO()
    try:
        call_command("silk_nplusone", stdout=out, **options)
    except CommandError:
        return out.getvalue(), True
    return out.getvalue(), False


def manage_py(*args: str) -> subprocess.CompletedProcess:
    """The command as CI runs it, in a fresh process on the test database."""
    db = connection.settings_dict
    url = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    env = dict(
        os.environ, SILK_ENABLED="1", DJANGO_SETTINGS_MODULE="core.settings", DATABASE_URL=url
    )
    return subprocess.run(
        [sys.executable, "manage.py", "silk_nplusone", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_silk_pages_are_staff_only(client):
    anonymous = client.get("/silk/")
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/admin/login/")

    client.force_login(User.objects.create_user("member@example.com"))
    assert client.get("/silk/").status_code == 403

    client.force_login(User.objects.create_user("staff@example.com", is_staff=True))
    assert client.get("/silk/").status_code == 200


def test_real_endpoints_pass_and_the_planted_n_plus_one_is_caught(api, password_hash):
    from silk.models import Request

    email = fresh_email()
    answer = api.post_json("/api/v1/signup", {"email": email, "password": PASSWORD})
    assert answer.status_code == 202
    code = verification_code_issue(
        user=User.objects.get(email=email), purpose=VerificationCode.Purpose.VERIFY_EMAIL
    )
    token = answer.json()["verification_token"]
    body = {"email": email, "code": code, "verification_token": token}
    verify = api.post_json("/api/v1/signup/verify", body)
    assert verify.status_code == 200
    other = unverified_user(password_hash=password_hash)
    assert api.post_json("/api/v1/signup/resend", {"email": other.email}).status_code == 202
    assert api.get("/api/v1/health").status_code == 200

    assert set(Request.objects.values_list("path", flat=True)) == REAL_PATHS
    for body in Request.objects.values_list("body", "raw_body"):
        assert PASSWORD not in "".join(part or "" for part in body)  # none is kept at all
        assert code not in "".join(part or "" for part in body)

    output, found = run_command()
    assert not found, output
    assert "Checked 4 request(s)" in output

    for n in range(PLANTED_USERS):
        User.objects.create_user(f"planted-{n}@example.com")
    assert api.get(PLANTED).status_code == 200

    output, found = run_command(threshold=5)
    assert found, output
    flagged = [line for line in output.splitlines() if line.startswith("N+1:")]
    assert len(flagged) == 1, output
    users = User.objects.count()
    assert f"GET {PLANTED} ran one query shape {users} times" in flagged[0]
    assert "signup_verificationcode" in output

    # As CI runs it: a non-zero exit for the planted view, zero for the API alone.
    cli = manage_py("--threshold", "5")
    assert cli.returncode == 1, cli.stdout + cli.stderr
    assert PLANTED in cli.stdout
    assert manage_py("--path-prefix", "/api/").returncode == 0
