"""Unverified accounts expire (no address held hostage), and a password reset
ends every pending signup of the address (pre-account hijacking's way out)."""

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from messaging.periodic import PeriodicJobs
from signup.codes import verification_code_issue
from signup.flows.expiry import unverified_accounts_expire
from signup.models import PendingSignup, User, VerificationCode, Wallet
from signup.tests.conftest import PASSWORD, SIGNUP, VERIFY, issue_code, make_user, verify_body

pytestmark = pytest.mark.django_db

LOGIN = "/api/v1/auth/login"
RESET_CONFIRM = "/api/v1/auth/password/reset/confirm"
TTL = timedelta(days=7)


def age(user: User, by: timedelta) -> None:
    User.objects.filter(pk=user.pk).update(date_joined=timezone.now() - by)
    PendingSignup.objects.filter(user=user).update(created_at=timezone.now() - by)


def test_an_account_never_verified_expires_after_the_ttl():
    old = make_user("old@example.com")
    young = make_user("young@example.com")
    verified = make_user("verified@example.com", verified=True)
    staff = make_user("staff@example.com", is_staff=True)
    rich = make_user("rich@example.com")
    Wallet.objects.filter(user=rich).update(balance=Decimal("5.00"))
    for user in (old, verified, staff, rich):
        age(user, TTL + timedelta(minutes=1))
    age(young, TTL - timedelta(minutes=1))

    assert unverified_accounts_expire(batch=1) == 1

    assert set(User.objects.values_list("email", flat=True)) == {
        "young@example.com",
        "verified@example.com",
        "staff@example.com",
        "rich@example.com",  # a wallet holding money is never deleted
    }
    assert not PendingSignup.objects.filter(user_id=old.pk).exists()


def test_an_expired_address_can_sign_up_afresh(api):
    attacker = make_user("victim@example.com", password="attacker passphrase 9911")
    age(attacker, TTL + timedelta(hours=1))
    out = io.StringIO()
    call_command("unverified_expire", stdout=out)
    assert out.getvalue() == "deleted 1 unverified account(s)\n"

    response = api.post_json(SIGNUP, {"email": "victim@example.com", "password": PASSWORD})

    assert response.status_code == 202
    assert User.objects.get().pk != attacker.pk


def test_a_signup_token_older_than_the_ttl_no_longer_verifies(api):
    user = make_user("ada@example.com")
    PendingSignup.objects.update(created_at=timezone.now() - TTL - timedelta(seconds=1))

    response = api.post_json(VERIFY, verify_body("ada@example.com", issue_code(user)))

    assert response.status_code == 400


RUNS: list[str] = []


def record_run() -> None:
    RUNS.append("ran")


def explode() -> None:
    raise RuntimeError("boom")


def test_every_worker_runs_the_expiry_hourly_by_default(settings):
    assert settings.WORKER_PERIODIC_JOBS["signup.flows.expiry.unverified_accounts_expire"] == 3600


def test_a_periodic_job_runs_at_once_then_each_interval(settings):
    settings.WORKER_PERIODIC_JOBS = {"signup.tests.test_expiry.record_run": 3600}
    RUNS.clear()
    jobs = PeriodicJobs()

    jobs.run_due()
    jobs.run_due()

    assert RUNS == ["ran"]


def test_a_failing_periodic_job_is_logged_and_does_not_stop_the_others(settings, caplog):
    settings.WORKER_PERIODIC_JOBS = {
        "signup.tests.test_expiry.explode": 60,
        "signup.tests.test_expiry.record_run": 60,
    }
    RUNS.clear()

    PeriodicJobs().run_due()

    assert RUNS == ["ran"]
    assert "periodic job=signup.tests.test_expiry.explode outcome=error" in caplog.text


def test_a_reset_ends_every_pending_signup_and_verifies(api):
    """The owner's way out: a completed reset proves the mailbox, so the
    address is verified and no pending signup can set a password later."""
    user = make_user("victim@example.com", password="attacker passphrase 9911")
    code = verification_code_issue(user=user, purpose=VerificationCode.Purpose.RESET)
    new = "victims own secret 4242"
    body = {"email": "victim@example.com", "code": code, "password": new}

    assert api.post_json(RESET_CONFIRM, body).status_code == 200

    assert User.objects.get().is_verified
    assert not PendingSignup.objects.exists()
    attacker_login = {"email": "victim@example.com", "password": "attacker passphrase 9911"}
    assert api.post_json(LOGIN, attacker_login).status_code == 400
    owner_login = {"email": "victim@example.com", "password": new}
    assert api.post_json(LOGIN, owner_login).status_code == 200
