"""Parallel uses of one second factor on real PostgreSQL (issue 21): of
parallel requests with one TOTP code, one recovery code or one mfa_token,
exactly one wins; parallel wrong guesses are checked at most the limit.

Each thread has its own client and database connection; the tests commit for
real (transaction=True). Where timing alone might serialize the requests, a
barrier holds every request after its check until all have checked: they
then meet at the conditional UPDATE that must decide.
"""

import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.test import Client

from signup import messages
from signup.authenticator import secret_decrypt, secret_encrypt
from signup.flows import mfa as mfa_flows
from signup.flows import mfa_login
from signup.flows.mfa_login import CHALLENGE_GONE, mfa_challenge_issue
from signup.models import AccessToken, RecoveryCode, TotpDevice
from signup.tests.accounts_helpers import PASSWORD, together, verified_user
from signup.tests.mfa_helpers import (
    AUTH_MFA,
    CONFIRM,
    TOTP,
    outbox_rows,
    totp_clock_freeze,
    totp_enable,
)
from signup.tokens import token_issue

pytestmark = pytest.mark.django_db(transaction=True)

PARALLEL = 6


def held_after(monkeypatch, module, name: str, n: int) -> None:
    """module.name runs, then waits until n calls have returned from it."""
    real = getattr(module, name)
    checked = threading.Barrier(n)

    def wrapper(*args, **kwargs):
        result = real(*args, **kwargs)
        checked.wait(timeout=10)
        return result

    monkeypatch.setattr(module, name, wrapper)


def post(body: dict, path: str = AUTH_MFA, raw: str | None = None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"} if raw else {}
    response = Client().post(path, json.dumps(body), content_type="application/json", **headers)
    return response.status_code, response.json()


@pytest.fixture
def clock(monkeypatch):
    return totp_clock_freeze(monkeypatch)


@pytest.fixture
def ada():
    user = verified_user()
    secret, codes = totp_enable(user)
    return user, secret, codes


@pytest.fixture(autouse=True)
def _no_lockout(settings):
    """The losers' refusals count as wrong second factors: keep them under the limit."""
    settings.MFA_FAILURES_PER_ACCOUNT = 100


def test_one_totp_code_used_in_parallel_logs_in_once(monkeypatch, clock, ada):
    user, secret, _ = ada
    tokens = [mfa_challenge_issue(user=user) for _ in range(PARALLEL)]
    code = clock.code(secret)
    held_after(monkeypatch, mfa_login, "totp_match", PARALLEL)

    answers = together(PARALLEL, lambda i: post({"mfa_token": tokens[i], "code": code}))

    assert Counter(status for status, _ in answers) == {200: 1, 400: PARALLEL - 1}
    assert all(body["code"] == "invalid_code" for status, body in answers if status == 400)
    assert AccessToken.objects.filter(user=user).count() == 1
    assert TotpDevice.objects.get(user=user).last_step == clock.step()


def test_one_recovery_code_used_in_parallel_logs_in_once(monkeypatch, ada):
    user, _, codes = ada
    tokens = [mfa_challenge_issue(user=user) for _ in range(PARALLEL)]
    held_after(monkeypatch, mfa_login, "recovery_code_hash", PARALLEL)

    answers = together(
        PARALLEL, lambda i: post({"mfa_token": tokens[i], "recovery_code": codes[0]})
    )

    assert Counter(status for status, _ in answers) == {200: 1, 400: PARALLEL - 1}
    assert AccessToken.objects.filter(user=user).count() == 1
    assert RecoveryCode.objects.filter(user=user, used_at__isnull=False).count() == 1
    (notice,) = outbox_rows(user, messages.MFA_RECOVERY_USED_EMAIL)
    assert notice.context["left"] == 9


def test_one_mfa_token_used_in_parallel_logs_in_once(monkeypatch, ada):
    """Each request has its own right recovery code: the mfa_token alone decides,
    and it is taken before the code is checked, so the losers burn no code."""
    user, _, codes = ada
    mfa_token = mfa_challenge_issue(user=user)

    answers = together(
        PARALLEL, lambda i: post({"mfa_token": mfa_token, "recovery_code": codes[i]})
    )

    assert Counter(status for status, _ in answers) == {200: 1, 400: PARALLEL - 1}
    assert all(body["detail"] == CHALLENGE_GONE for status, body in answers if status == 400)
    assert AccessToken.objects.filter(user=user).count() == 1
    assert RecoveryCode.objects.filter(user=user, used_at__isnull=False).count() == 1


def test_one_code_confirmed_in_parallel_turns_it_on_once(monkeypatch, clock):
    user = verified_user()
    raw = token_issue(user=user)[0]
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    TotpDevice.objects.create(user=user, secret=secret_encrypt(secret))
    held_after(monkeypatch, mfa_flows, "totp_step_of", PARALLEL)

    answers = together(PARALLEL, lambda i: post({"code": clock.code(secret)}, CONFIRM, raw))

    statuses = Counter(status for status, _ in answers)
    assert statuses == {200: 1, 409: PARALLEL - 1}
    (codes,) = [body["recovery_codes"] for status, body in answers if status == 200]
    assert RecoveryCode.objects.filter(user=user).count() == len(codes) == 10
    assert len(outbox_rows(user, messages.MFA_ENABLED_EMAIL)) == 1


def test_parallel_wrong_guesses_are_checked_at_most_the_limit(settings, clock, ada):
    settings.MFA_FAILURES_PER_ACCOUNT = 5
    user, secret, _ = ada
    parallel = 12
    tokens = [mfa_challenge_issue(user=user) for _ in range(parallel)]
    bad = f"{(int(clock.code(secret)) + 1) % 10**6:06d}"

    answers = together(parallel, lambda i: post({"mfa_token": tokens[i], "code": bad}))

    assert Counter(status for status, _ in answers) == {400: 5, 429: parallel - 5}
    assert len(outbox_rows(user, messages.MFA_FAILURES_EMAIL)) == 1


def test_a_confirm_cannot_turn_on_a_secret_replaced_meanwhile(monkeypatch, clock):
    """A second enrolment lands between a confirm's check and its UPDATE: the
    code of the replaced secret must not turn two-factor login on with the
    new secret (which the code never came from)."""
    user = verified_user()
    raw = token_issue(user=user)[0]
    old = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    TotpDevice.objects.create(user=user, secret=secret_encrypt(old))
    matched, go = threading.Event(), threading.Event()
    real = mfa_flows.totp_step_of

    def totp_step_of(*args, **kwargs):
        step = real(*args, **kwargs)
        matched.set()
        go.wait(timeout=10)
        return step

    monkeypatch.setattr(mfa_flows, "totp_step_of", totp_step_of)

    with ThreadPoolExecutor(max_workers=1) as pool:
        confirming = pool.submit(
            together, 1, lambda i: post({"code": clock.code(old)}, CONFIRM, raw)
        )
        assert matched.wait(timeout=10)
        enrolled = Client().post(
            TOTP,
            json.dumps({"password": PASSWORD}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {raw}",
        )
        go.set()
        ((status, _),) = confirming.result(timeout=10)

    assert enrolled.status_code == 200
    device = TotpDevice.objects.get(user=user)
    assert secret_decrypt(device.secret) == enrolled.json()["secret"]
    assert (status, device.is_on) == (400, False)
