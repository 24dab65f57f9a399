"""Two-factor login end to end, as a person uses it (issue 21): a verified
user logs in with the password, turns on an authenticator app, logs out,
logs in with the password and the app's code, then with a recovery code;
having lost both, asks support, whose staff reset it in the admin; the user
is told by email and logs in with the password alone again.

The app is Debian's oathtool, an implementation of RFC 6238 independent of
the service's pyotp: a secret or URI the service hands out that a real app
would read otherwise, or a code it computes otherwise, fails here. The
emails go the production way: outbox rows, real Redis, a real
`manage.py rundramatiq` worker, a real SMTP server (aiosmtpd).
"""

import os
import shutil
import subprocess
import time
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from django.test import Client

from conftest import wait_until
from messaging.models import Outbox
from messaging.tests.test_delivery import wait_for_rows, worker_env, worker_log
from signup.messages import MFA_DISABLED_EMAIL
from signup.models import RecoveryCode, TotpDevice, User
from signup.tests.conftest import PASSWORD, make_user

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

EMAIL = "ada@example.com"
LOGIN = "/api/v1/auth/login"
LOGOUT = "/api/v1/auth/logout"
SECOND_STEP = "/api/v1/auth/mfa"
MFA_STATUS = "/api/v1/me/mfa"
SUBJECT_ON = "Two-factor login is on for your Payshift account"
SUBJECT_CODE_USED = "A recovery code was used to log in to your Payshift account"
SUBJECT_OFF = "Two-factor login is off for your Payshift account"


@pytest.fixture
def oathtool() -> str:
    """The path of oathtool: skipped where it is missing on a developer's
    machine, a failure in CI (CI set), where scripts/services installs it."""
    found = shutil.which("oathtool")
    if found is None:
        reason = (
            "oathtool is not installed (apt-get install oathtool): it is the independent "
            "TOTP implementation this test checks the service against"
        )
        if "CI" in os.environ:
            pytest.fail(f"{reason}; CI must have it (scripts/services installs it)")
        pytest.skip(reason)
    return found


def app_code(oathtool: str, secret: str, *, at: float | None = None) -> str:
    """What the authenticator app shows for secret, now or at a given time."""
    command = [oathtool, "--totp=SHA1", "--digits=6", "--time-step-size=30s", "--base32"]
    if at is not None:
        command.append(f"--now=@{int(at)}")
    done = subprocess.run([*command, secret], capture_output=True, text=True, timeout=10)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def password_login(api) -> dict:
    answer = api.post_json(LOGIN, {"email": EMAIL, "password": PASSWORD})
    assert answer.status_code == 200, answer.content
    return answer.json()


def mfa_status(api, token: str) -> dict:
    answer = api.get(MFA_STATUS, **bearer(token))
    assert answer.status_code == 200, answer.content
    return answer.json()


def mail_with_subject(mail_sink, tmp_path, subject: str) -> dict:
    """The one email to the user with this subject, waited for (the worker sends it)."""

    def found():
        return [m for m in mail_sink.handler.to(EMAIL) if m["subject"] == subject]

    try:
        [message] = wait_until(found, timeout=30)
    except AssertionError as exc:
        got = [m["subject"] for m in mail_sink.handler.to(EMAIL)]
        raise AssertionError(
            f"{exc}: {subject!r} not among {got}\n{worker_log(tmp_path)}"
        ) from None
    return message


def secret_as_an_app_reads_it(enrolment: dict) -> str:
    """The secret from the otpauth URI (what scanning the QR code gives an
    app), checked against the one shown in clear and the parameters oathtool
    is run with: SHA1, 6 digits, 30 s."""
    uri = urlsplit(enrolment["otpauth_uri"])
    params = {name: values[0] for name, values in parse_qs(uri.query).items()}
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert unquote(uri.path) == f"/Payshift:{EMAIL}"
    assert params["secret"] == enrolment["secret"]
    assert params["issuer"] == "Payshift"
    assert params.get("algorithm", "SHA1") == "SHA1"
    assert params.get("digits", "6") == "6"
    assert params.get("period", "30") == "30"
    assert enrolment["qr_svg"].startswith("data:image/svg+xml")
    return params["secret"]


def turn_on(api, oathtool: str, token: str) -> tuple[str, str, list[str]]:
    """Enrol (re-authenticated with the password), confirm with the app's code:
    the secret, the confirming code and the recovery codes, shown this once."""
    assert mfa_status(api, token) == {"totp": False, "recovery_codes_left": 0}
    enrolment = api.post_json("/api/v1/me/mfa/totp", {"password": PASSWORD}, **bearer(token))
    assert enrolment.status_code == 200, enrolment.content
    secret = secret_as_an_app_reads_it(enrolment.json())

    code = app_code(oathtool, secret)
    confirmed = api.post_json("/api/v1/me/mfa/totp/confirm", {"code": code}, **bearer(token))

    assert confirmed.status_code == 200, confirmed.content
    codes = confirmed.json()["recovery_codes"]
    assert len(codes) == len(set(codes)) == 10, codes
    assert mfa_status(api, token) == {"totp": True, "recovery_codes_left": 10}
    return secret, code, codes


def log_out(api, token: str) -> None:
    assert api.post(LOGOUT, **bearer(token)).status_code == 204
    assert api.get("/api/v1/me", **bearer(token)).status_code == 401


def first_step(api) -> str:
    """The password is right, but no token yet: only the mfa_token."""
    body = password_login(api)
    assert set(body) == {"mfa_required", "mfa_token"}, body
    assert body["mfa_required"] is True, body
    return body["mfa_token"]


def second_step(api, **body) -> tuple[int, dict]:
    answer = api.post_json(SECOND_STEP, body)
    return answer.status_code, answer.json()


def log_in_with_the_app(api, oathtool: str, secret: str, confirming: str) -> str:
    """The code that confirmed the app is refused (a replay: its step is
    used); the mfa_token survives the typo; the app's next code (oathtool at
    now + 30 s: a later step, inside the service's one step of drift) is
    taken, once."""
    mfa_token = first_step(api)
    status, body = second_step(api, mfa_token=mfa_token, code=confirming)
    assert (status, body["code"]) == (400, "invalid_code"), body

    code = app_code(oathtool, secret, at=time.time() + 30)
    status, body = second_step(api, mfa_token=mfa_token, code=code)
    assert status == 200, body
    assert set(body) == {"access_token", "token_type", "expires_in"}, body
    assert body["token_type"] == "Bearer"
    assert second_step(api, mfa_token=first_step(api), code=code)[0] == 400  # used
    return body["access_token"]


def log_in_with_a_recovery_code(api, code: str) -> str:
    """A recovery code as shown works once; typed again in another form
    (capitals, no dashes) it is refused."""
    status, body = second_step(api, mfa_token=first_step(api), recovery_code=code)
    assert status == 200, body
    retyped = code.upper().replace("-", "")
    status, refused = second_step(api, mfa_token=first_step(api), recovery_code=retyped)
    assert (status, refused["code"]) == (400, "invalid_code"), refused
    return body["access_token"]


def staff_reset(user: User) -> None:
    """A superuser logs in to the admin (its login page, the password) and
    runs "Reset two-factor login" on the user from the changelist."""
    User.objects.create_superuser("root@payshift.test", PASSWORD)
    staff = Client()
    login = staff.post(
        "/admin/login/?next=/admin/", {"username": "root@payshift.test", "password": PASSWORD}
    )
    assert login.status_code == 302, login.content.decode()[:2000]

    changelist = "/admin/signup/user/"
    form = {"action": "reset_two_factor", "_selected_action": [user.pk]}
    done = staff.post(changelist, form, follow=True)

    assert done.status_code == 200
    assert done.redirect_chain[-1][0].endswith(changelist), done.redirect_chain
    shown = [str(m) for m in done.context["messages"]]
    assert shown == ["Two-factor login reset for 1 account(s); 0 had it off."], shown


def test_two_factor_login_from_enrolment_to_a_staff_reset(
    api, mail_sink, start_worker, tmp_path, oathtool
):
    """The whole life of a second factor as the user and support see it, each
    step checked through the API and the email the user really receives."""
    user = make_user(EMAIL, verified=True)
    start_worker(**worker_env(mail_sink))
    token = password_login(api)["access_token"]

    secret, confirming, codes = turn_on(api, oathtool, token)
    assert EMAIL in mail_with_subject(mail_sink, tmp_path, SUBJECT_ON)["body"]
    log_out(api, token)

    token = log_in_with_the_app(api, oathtool, secret, confirming)
    assert mfa_status(api, token) == {"totp": True, "recovery_codes_left": 10}
    log_out(api, token)

    token = log_in_with_a_recovery_code(api, codes[3])
    assert mfa_status(api, token) == {"totp": True, "recovery_codes_left": 9}
    used = mail_with_subject(mail_sink, tmp_path, SUBJECT_CODE_USED)
    assert "Recovery codes left: 9." in used["body"]
    log_out(api, token)

    # Lost both: the app and every recovery code. Support resets it.
    staff_reset(user)
    [row] = Outbox.objects.filter(user=user, kind=MFA_DISABLED_EMAIL)
    assert row.context["by"] == "staff", row.context
    told = mail_with_subject(mail_sink, tmp_path, SUBJECT_OFF)
    assert "Payshift support turned two-factor login off" in told["body"]

    body = password_login(api)
    assert set(body) == {"access_token", "token_type", "expires_in"}, body
    assert mfa_status(api, body["access_token"]) == {"totp": False, "recovery_codes_left": 0}
    assert not TotpDevice.objects.filter(user=user).exists()
    assert not RecoveryCode.objects.filter(user=user).exists()
    wait_for_rows(tmp_path, lambda: not Outbox.objects.exclude(state=Outbox.State.SENT).exists())
