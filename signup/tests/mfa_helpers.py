"""Helpers for the two-factor login tests (issue 21): paths, an account with
TOTP on, codes of a frozen clock, and the requests of the second step."""

import json
import time

import pyotp
from django.conf import settings
from django.utils import timezone

from messaging.models import Outbox
from signup.authenticator import (
    TOTP_PERIOD,
    recovery_code_hash,
    recovery_code_new,
    secret_encrypt,
    totp_secret_new,
)
from signup.models import RecoveryCode, TotpDevice, User
from signup.tests.accounts_helpers import LOGIN, PASSWORD, bearer
from signup.tests.conftest import Clock

MFA_STATUS = "/api/v1/me/mfa"
TOTP = "/api/v1/me/mfa/totp"
CONFIRM = "/api/v1/me/mfa/totp/confirm"
RECOVERY = "/api/v1/me/mfa/recovery-codes"
AUTH_MFA = "/api/v1/auth/mfa"


class TotpClock(Clock):
    """The clock of signup.authenticator; codes are made for its time."""

    def step(self) -> int:
        return int(self.now // TOTP_PERIOD)

    def code(self, secret: str, steps: int = 0) -> str:
        """The code an app shows `steps` 30 s steps from now."""
        return pyotp.TOTP(secret).at(self.now + steps * TOTP_PERIOD)


def totp_clock_freeze(monkeypatch) -> TotpClock:
    """Freeze signup.authenticator's clock 10 s into a step (no edge in a test)."""
    start = (int(time.time()) // TOTP_PERIOD) * TOTP_PERIOD + 10
    fake = TotpClock(float(start))
    monkeypatch.setattr("signup.authenticator.time", fake)
    return fake


def totp_enable(user: User, secret: str | None = None) -> tuple[str, list[str]]:
    """Two-factor login on for user, as a confirmed enrolment leaves it:
    (the base32 secret, the recovery codes)."""
    secret = secret or totp_secret_new()
    TotpDevice.objects.create(user=user, secret=secret_encrypt(secret), confirmed_at=timezone.now())
    codes = [recovery_code_new() for _ in range(settings.MFA_RECOVERY_CODES)]
    RecoveryCode.objects.bulk_create(
        [RecoveryCode(user=user, code_hash=recovery_code_hash(c, user_id=user.pk)) for c in codes]
    )
    return secret, codes


def send(api, method: str, path: str, body=None, raw: str | None = None):
    """A JSON request, with a bearer token when raw is given."""
    headers = bearer(raw) if raw else {}
    if method == "GET":
        return api.get(path, **headers)
    data = body if isinstance(body, str) else json.dumps(body if body is not None else {})
    call = getattr(api, method.lower())
    return call(path, data, content_type="application/json", **headers)


def login(api, email: str, password: str = PASSWORD):
    return api.post_json(LOGIN, {"email": email, "password": password})


def mfa_token_for(api, email: str) -> str:
    """The first step of a login by password on an account with TOTP on."""
    response = login(api, email)
    assert response.status_code == 200, response.content
    assert response.json()["mfa_required"] is True
    return response.json()["mfa_token"]


def second_step(api, mfa_token: str, *, code=None, recovery_code=None):
    body: dict = {"mfa_token": mfa_token}
    if code is not None:
        body["code"] = code
    if recovery_code is not None:
        body["recovery_code"] = recovery_code
    return api.post_json(AUTH_MFA, body)


def outbox_rows(user: User, kind: str) -> list[Outbox]:
    return list(Outbox.objects.filter(user=user, kind=kind).order_by("pk"))
