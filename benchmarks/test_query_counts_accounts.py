"""The accounts query-count gate: a fixed list of statements per request, the
same with 0, 1 or 500 notifications, other tokens and admins.

As benchmarks/test_query_counts.py: CaptureQueriesContext sees what
PostgreSQL sees (BEGIN/COMMIT included); transaction=True so on-commit work
runs. A new statement fails with the statements listed.
"""

import time
from datetime import timedelta

import pyotp
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from benchmarks.accounts_data import (
    notifications_for,
    recovery_code_for,
    tokens_for,
    totp_code,
    totp_on_for,
    touched_token,
    verified_account,
)
from benchmarks.data import PASSWORD, population
from benchmarks.gate import Row
from benchmarks.test_query_counts import listing
from messaging.models import Notification, Outbox
from messaging.services import notifications_deliver
from signup import messages
from signup.authenticator import secret_encrypt, totp_secret_new
from signup.codes import verification_code_issue
from signup.flows import status
from signup.models import EmailChange, TotpDevice, VerificationCode
from signup.tokens import token_issue

# the user's authenticator is joined too (issue 21): whether two-factor login
# is on costs the requests below no query
AUTH = (
    "SELECT signup_accesstoken JOIN user, profile, LEFT JOIN totpdevice by key_hash (live, active)"
)
EXPECTED = {
    "POST /api/v1/auth/login": [
        # the attempt is counted before the hash, atomically (signup.limits:
        # parallel wrong logins cannot all pass the limit), and a right
        # password gives it back: a wrong one costs these two statements
        "INSERT signup_addresscounter ON CONFLICT ... RETURNING (reserve an attempt)",
        "SELECT signup_user LEFT JOIN signup_totpdevice by Lower(email) (ModelBackend;"
        " the join tells whether a second step follows: no query of its own)",
        "UPDATE signup_addresscounter SET failures = 0 (a right password: cleared)",
        "INSERT signup_accesstoken",
    ],
    "POST /api/v1/auth/code": [
        "BEGIN",
        "INSERT signup_addresslimit ON CONFLICT ... RETURNING (lock-or-create, signup.limits)",
        "UPDATE signup_addresslimit SET asks, recent",
        "UPDATE signup_addresscounter SET failures = 0 (the wrong-code count restarts)",
        # then one enqueue (signup.tasks.resend_code): the worker looks the
        # account up, so known and unknown addresses cost the request the same
        "COMMIT",
    ],
    "POST /api/v1/auth/code/verify": [
        "BEGIN",
        "INSERT signup_addresscounter ON CONFLICT ... RETURNING (reserve: the wrong-code count)",
        "SELECT signup_verificationcode JOIN signup_user by Lower(email) FOR UPDATE (as verify)",
        "UPDATE signup_addresscounter SET failures - 1 (a right code: given back)",
        "UPDATE signup_verificationcode SET used_at",
        "SELECT signup_user by id (the code matched: may the account still use it?)",
        "DELETE signup_addresscounter (failed password logins)",
        "INSERT signup_accesstoken",
        "COMMIT",
    ],
    "POST /api/v1/auth/password/reset": [
        "BEGIN",
        "INSERT signup_addresslimit ON CONFLICT ... RETURNING (lock-or-create, signup.limits)",
        "UPDATE signup_addresslimit SET asks, recent",
        "UPDATE signup_addresscounter SET failures = 0 (the wrong-code count restarts)",
        # then one enqueue: the worker decides (as for the login code)
        "COMMIT",
    ],
    "POST /api/v1/auth/password/reset/confirm": [
        # the new password's Argon2id hash is made before the transaction
        "BEGIN",
        "INSERT signup_addresscounter ON CONFLICT ... RETURNING (reserve: the wrong-code count)",
        "SELECT signup_verificationcode JOIN signup_user by Lower(email) FOR UPDATE (as verify)",
        "UPDATE signup_addresscounter SET failures - 1 (a right code: given back)",
        "UPDATE signup_verificationcode SET used_at",
        "SELECT signup_user by id (the code matched: may the account still use it?)",
        "UPDATE signup_user SET password",
        "DELETE signup_pendingsignup (no earlier signup can verify it later)",
        "DELETE signup_emailchange (a pending email change dies)",
        "UPDATE signup_verificationcode SET used_at (its codes too)",
        "UPDATE signup_mfachallenge SET expires_at (unfinished two-factor logins end)",
        "UPDATE signup_accesstoken SET revoked_at (every older token: one statement)",
        "DELETE signup_addresscounter (failed password logins)",
        "INSERT signup_accesstoken",
        "COMMIT",
    ],
    "GET /api/v1/me": [AUTH],
    "PATCH /api/v1/me": [AUTH, "UPDATE signup_profile"],
    "GET /api/v1/me/wallet": [AUTH, "SELECT signup_wallet"],
    "GET /api/v1/me/notifications": [AUTH, "SELECT messaging_notification (keyset page)"],
    "POST /api/v1/me/notifications/{id}/read": [AUTH, "UPDATE messaging_notification"],
    "POST /api/v1/me/notifications/read-all": [AUTH, "UPDATE messaging_notification"],
    "POST /api/v1/auth/logout": [AUTH, "UPDATE signup_accesstoken SET revoked_at"],
    "POST /api/v1/auth/logout {others}": [
        AUTH,
        "UPDATE signup_mfachallenge SET expires_at (unfinished two-factor logins end)",
        "UPDATE signup_accesstoken SET revoked_at (every other live token: one statement)",
    ],
    "POST /api/v1/me/password": [
        AUTH,
        # re-authentication: a login attempt, reserved before the check
        "INSERT signup_addresscounter ON CONFLICT ... RETURNING (reserve an attempt)",
        "UPDATE signup_addresscounter SET failures = 0 (a right password: cleared)",
        "BEGIN",
        "UPDATE signup_user SET password",
        "DELETE signup_emailchange (a pending email change dies)",
        "UPDATE signup_verificationcode SET used_at (its codes too)",
        "UPDATE signup_mfachallenge SET expires_at (unfinished two-factor logins end)",
        "UPDATE signup_accesstoken SET revoked_at (every other token: one statement)",
        "INSERT messaging_outbox (the password-changed notice)",
        "COMMIT",
    ],
    "GET /api/v1/me/sessions": [AUTH, "SELECT signup_accesstoken (the user's live ones)"],
    "GET /api/v1/me/export": [
        AUTH,
        # counted in Redis (EXPORTS_PER_HOUR) before these: no statement
        "SELECT signup_wallet (before the answer starts: a database down is a 503)",
        # then, as the body streams: one keyset page per 500 notifications
        # (1 up to 500, 20 for 10,000: signup/tests/test_api_export.py)
        "SELECT messaging_notification (keyset page)",
        "SELECT signup_accesstoken (the user's live ones)",
    ],
    "POST /api/v1/me/email": [
        AUTH,
        "INSERT signup_addresscounter ON CONFLICT ... RETURNING (reserve: re-authentication)",
        "UPDATE signup_addresscounter SET failures = 0 (a right password: cleared)",
        "BEGIN",
        "INSERT signup_addresslimit ON CONFLICT ... RETURNING (the purpose's code limits)",
        "UPDATE signup_addresslimit SET asks, recent",
        "UPDATE signup_addresscounter SET failures = 0 (the wrong-code count restarts)",
        "SELECT signup_user by Lower(email) (free or taken: the same query)",
        "UPDATE signup_verificationcode SET used_at (an earlier request's code dies)",
        "INSERT signup_emailchange ON CONFLICT DO UPDATE (the pending change)",
        "INSERT messaging_outbox (both rows: the notice to the current address, the code"
        " or the notice to the new one)",
        "COMMIT",
    ],
    "DELETE /api/v1/me/sessions/{id}": [AUTH, "UPDATE signup_accesstoken SET revoked_at"],
    "POST /api/v1/me/email/confirm": [
        AUTH,
        "BEGIN",
        "INSERT signup_addresscounter ON CONFLICT ... RETURNING (reserve: the wrong-code count)",
        "SELECT signup_verificationcode JOIN signup_user by Lower(email) FOR UPDATE (as verify)",
        "UPDATE signup_addresscounter SET failures - 1 (a right code: given back)",
        "UPDATE signup_verificationcode SET used_at",
        "SELECT signup_emailchange FOR UPDATE (the pending change)",
        "DELETE signup_emailchange",
        "SAVEPOINT",
        "UPDATE signup_user SET email (the unique index decides a race)",
        "RELEASE SAVEPOINT",
        "UPDATE signup_mfachallenge SET expires_at (unfinished two-factor logins end)",
        "UPDATE signup_accesstoken SET revoked_at (every other token: one statement)",
        "INSERT messaging_outbox (the notice to the old address)",
        "COMMIT",
    ],
    "DELETE /api/v1/me": [
        AUTH,
        # re-authentication: counted as a login attempt before the password check
        "INSERT signup_addresscounter ON CONFLICT ... RETURNING (reserve an attempt)",
        "UPDATE signup_addresscounter SET failures = 0 (a right password: cleared)",
        "BEGIN",
        "DELETE signup_verificationcode (every code of the user)",
        "DELETE signup_emailchange",
        "SELECT signup_wallet JOIN signup_user FOR UPDATE (the balance, both rows locked)",
        "UPDATE signup_user SET is_active, email (tombstone), password (unusable)",
        "UPDATE signup_profile SET full_name = ''",
        "UPDATE signup_mfachallenge SET expires_at (unfinished two-factor logins end)",
        "UPDATE signup_accesstoken SET revoked_at (every live token: one statement)",
        "DELETE signup_pendingsignup",
        # two-factor login (issue 21): the encrypted secret, the recovery codes'
        # hashes and any live mfa_token go with the account
        "DELETE signup_totpdevice",
        "DELETE signup_recoverycode",
        "INSERT messaging_outbox (goodbye email and admin notice: one statement)",
        "COMMIT",
    ],
    # Two-factor login (issue 21). The password step on an account with TOTP
    # on: the same statements as without it up to the right password (the
    # same join), then the mfa_token instead of the access token.
    "POST /api/v1/auth/login {totp on}": [
        "INSERT signup_addresscounter ON CONFLICT ... RETURNING (reserve an attempt)",
        "SELECT signup_user LEFT JOIN signup_totpdevice by Lower(email) (ModelBackend)",
        "UPDATE signup_addresscounter SET failures = 0 (a right password: cleared)",
        "INSERT signup_mfachallenge (the mfa_token)",
    ],
    # The second step takes the mfa_token before it checks the code (given
    # back, one more UPDATE, when the code is wrong): of parallel requests
    # with one mfa_token only one checks a code. No transaction: each
    # statement commits on its own.
    "POST /api/v1/auth/mfa {code}": [
        "SELECT signup_mfachallenge JOIN user LEFT JOIN totpdevice by token_hash (live, unused)",
        "UPDATE signup_mfachallenge SET used_at WHERE used_at IS NULL (take the mfa_token)",
        "INSERT signup_addresscounter ON CONFLICT ... RETURNING (reserve: kind mfa, the account)",
        "UPDATE signup_totpdevice SET last_step WHERE last_step < step (the code, once)",
        "UPDATE signup_addresscounter SET failures = 0 (a right second factor: cleared)",
        "INSERT signup_accesstoken",
    ],
    "POST /api/v1/auth/mfa {recovery_code}": [
        "SELECT signup_mfachallenge JOIN user LEFT JOIN totpdevice by token_hash (live, unused)",
        "UPDATE signup_mfachallenge SET used_at WHERE used_at IS NULL (take the mfa_token)",
        "INSERT signup_addresscounter ON CONFLICT ... RETURNING (reserve: kind mfa, the account)",
        "BEGIN",
        "UPDATE signup_recoverycode SET used_at WHERE code_hash, unused (the code, once)",
        "SELECT COUNT(*) signup_recoverycode (the unused ones left, for the notice)",
        "INSERT messaging_outbox (the recovery-code-used notice)",
        "COMMIT",
        "UPDATE signup_addresscounter SET failures = 0 (a right second factor: cleared)",
        "INSERT signup_accesstoken",
    ],
    "POST /api/v1/auth/mfa {wrong code}": [
        "SELECT signup_mfachallenge JOIN user LEFT JOIN totpdevice by token_hash (live, unused)",
        "UPDATE signup_mfachallenge SET used_at WHERE used_at IS NULL (take the mfa_token)",
        "INSERT signup_addresscounter ON CONFLICT ... RETURNING (reserve: it stays, a failure)",
        # no device UPDATE: the code matched no step
        "UPDATE signup_mfachallenge SET used_at = NULL (given back: a typo ends no login)",
    ],
    "GET /api/v1/me/mfa": [
        AUTH,
        "SELECT COUNT(totpdevice) FILTER (confirmed), COUNT(recoverycode) FILTER (unused)"
        " FROM signup_user LEFT JOIN both (one aggregate)",
    ],
    "POST /api/v1/me/mfa/totp": [
        AUTH,  # TOTP off: read from the joined row (409 otherwise)
        # re-authentication: a login attempt, reserved before the password check
        "INSERT signup_addresscounter ON CONFLICT ... RETURNING (reserve an attempt)",
        "UPDATE signup_addresscounter SET failures = 0 (a right password: cleared)",
        "UPDATE signup_totpdevice SET secret WHERE confirmed_at IS NULL (replace a pending one)",
        "BEGIN",  # none was pending: a new row (its own atomic block)
        "INSERT signup_totpdevice",
        "COMMIT",
    ],
    "POST /api/v1/me/mfa/totp/confirm": [
        AUTH,
        # the device again, though AUTH joined it (user.totp would save this one)
        "INSERT signup_addresscounter ON CONFLICT ... RETURNING (reserve: kind mfa, the account)",
        "BEGIN",
        "UPDATE signup_totpdevice SET confirmed_at, last_step WHERE confirmed_at IS NULL",
        "DELETE signup_recoverycode (the user's older set)",
        "INSERT signup_recoverycode (the new set: one statement)",
        "INSERT messaging_outbox (the two-factor-on notice)",
        "COMMIT",
        "UPDATE signup_addresscounter SET failures = 0 (a right code: cleared)",
    ],
}
SERVICES = {
    "user_deactivate": [
        "BEGIN",
        "SELECT signup_user FOR UPDATE",
        "UPDATE signup_user SET is_active",
        "UPDATE signup_mfachallenge SET expires_at (unfinished two-factor logins end)",
        "UPDATE signup_accesstoken SET revoked_at (every live token: one statement)",
        "INSERT messaging_outbox (both rows, one statement)",
        "COMMIT",
    ],
    # One transaction, one commit (issue 23: there were four), and 6
    # statements (there were 9): a WITH carries each pair of writes.
    "notify (worker: the user and every admin)": [
        "BEGIN",
        "WITH claimed AS (UPDATE messaging_outbox (claim) RETURNING) SELECT claimed JOIN user",
        "SAVEPOINT (the row's own work)",
        "WITH finished AS (UPDATE messaging_outbox (sent)) INSERT messaging_notification"
        " SELECT (the user UNION ALL every admin, from signup_user: one statement)",
        "RELEASE SAVEPOINT",
        "COMMIT",
    ],
}

pytestmark = pytest.mark.django_db(transaction=True)
SIZES = [0, 1, 500]


@pytest.fixture
def world(password_hash):
    """A verified member (with a fresh token) among `existing` of everything."""

    def make(existing: int):
        population(users=existing, admins=existing, password_hash=password_hash)
        user = verified_account(password_hash=password_hash)
        notifications_for(user, existing)
        tokens_for(user, existing)
        return user, {"HTTP_AUTHORIZATION": f"Bearer {touched_token(user)}"}

    return make


def prepared(label: str, api, user, auth):
    """(send, expected status) for the request the label names; its setup runs now."""
    if label == "POST /api/v1/auth/login":
        body = {"email": user.email, "password": PASSWORD}
        return lambda: api.post_json("/api/v1/auth/login", body), 200
    if label == "POST /api/v1/auth/code":
        return lambda: api.post_json("/api/v1/auth/code", {"email": user.email}), 202
    if label == "POST /api/v1/auth/code/verify":
        code = verification_code_issue(user=user, purpose=VerificationCode.Purpose.LOGIN)
        body = {"email": user.email, "code": code}
        return lambda: api.post_json("/api/v1/auth/code/verify", body), 200
    if label == "POST /api/v1/auth/password/reset":
        return lambda: api.post_json("/api/v1/auth/password/reset", {"email": user.email}), 202
    if label == "POST /api/v1/auth/password/reset/confirm":
        code = verification_code_issue(user=user, purpose=VerificationCode.Purpose.RESET)
        body = {"email": user.email, "code": code, "password": "a new long passphrase"}
        return lambda: api.post_json("/api/v1/auth/password/reset/confirm", body), 200
    if label == "PATCH /api/v1/me":
        return lambda: api.patch(
            "/api/v1/me", '{"full_name": "N"}', "application/json", **auth
        ), 200
    if label == "POST /api/v1/me/notifications/{id}/read":
        mine = Notification.objects.create(user=user, kind="welcome", title="t", dedupe_key="x")
        return lambda: api.post(f"/api/v1/me/notifications/{mine.pk}/read", **auth), 204
    if label == "POST /api/v1/auth/logout {others}":
        return lambda: api.post_json("/api/v1/auth/logout", {"scope": "others"}, **auth), 204
    if label == "POST /api/v1/me/email":
        body = {"new_email": "moved@new.example", "password": PASSWORD}
        return lambda: api.post_json("/api/v1/me/email", body, **auth), 202
    if label == "POST /api/v1/me/email/confirm":
        EmailChange.objects.create(
            user=user,
            new_email="moved@new.example",
            expires_at=timezone.now() + timedelta(minutes=5),
        )
        code = verification_code_issue(user=user, purpose=VerificationCode.Purpose.EMAIL_CHANGE)
        return lambda: api.post_json("/api/v1/me/email/confirm", {"code": code}, **auth), 200
    if label == "POST /api/v1/me/password":
        body = {"current_password": PASSWORD, "new_password": "a new long passphrase"}
        return lambda: api.post_json("/api/v1/me/password", body, **auth), 204
    if label == "DELETE /api/v1/me/sessions/{id}":
        other = token_issue(user=user)[1]
        return lambda: api.delete(f"/api/v1/me/sessions/{other.pk}", **auth), 204
    if label == "GET /api/v1/me/export":
        # Streamed: its pages are read as the body is, so read all of it here.
        def export():
            response = api.get("/api/v1/me/export", **auth)
            response.body = b"".join(response.streaming_content)
            return response

        return export, 200
    if label == "DELETE /api/v1/me":
        body = f'{{"password": "{PASSWORD}"}}'
        return lambda: api.delete("/api/v1/me", body, "application/json", **auth), 204
    if label.startswith(("POST /api/v1/auth/login {totp on}", "POST /api/v1/auth/mfa")):
        return mfa_prepared(label, api, user)
    if label == "GET /api/v1/me/mfa":
        totp_on_for(user)
        return lambda: api.get("/api/v1/me/mfa", **auth), 200
    if label == "POST /api/v1/me/mfa/totp":
        body = {"password": PASSWORD}
        return lambda: api.post_json("/api/v1/me/mfa/totp", body, **auth), 200
    if label == "POST /api/v1/me/mfa/totp/confirm":
        # what the enrolment leaves: a pending device (the app holds the secret)
        secret = totp_secret_new()
        TotpDevice.objects.create(user=user, secret=secret_encrypt(secret))
        body = {"code": totp_code(secret)}
        return lambda: api.post_json("/api/v1/me/mfa/totp/confirm", body, **auth), 200
    method, path = label.split()
    status = 204 if method == "POST" else 200
    return lambda: getattr(api, method.lower())(path, **auth), status


def mfa_prepared(label: str, api, user):
    """Two-factor login on for user; the password step, or (for POST
    /auth/mfa) the second step with the password step already done."""
    secret = totp_on_for(user)
    login = {"email": user.email, "password": PASSWORD}
    if label == "POST /api/v1/auth/login {totp on}":
        return lambda: api.post_json("/api/v1/auth/login", login), 200
    mfa_token = api.post_json("/api/v1/auth/login", login).json()["mfa_token"]
    answer = 200
    if label == "POST /api/v1/auth/mfa {code}":
        body = {"mfa_token": mfa_token, "code": totp_code(secret)}
    elif label == "POST /api/v1/auth/mfa {wrong code}":
        body, answer = {"mfa_token": mfa_token, "code": totp_code_wrong(secret)}, 400
    else:
        body = {"mfa_token": mfa_token, "recovery_code": recovery_code_for(user)}
    return lambda: api.post_json("/api/v1/auth/mfa", body), answer


def totp_code_wrong(secret: str) -> str:
    """Six digits that are no code of secret's in the steps a check accepts."""
    taken = {pyotp.TOTP(secret).at(time.time() + 30 * k) for k in range(-2, 3)}
    return next(c for c in (f"{n:06d}" for n in range(10**6)) if c not in taken)


def check(label: str, existing: int, queries: list[dict], expected: list[str], rows) -> None:
    rows.append(
        Row(
            name=f"{label} [{existing} each]",
            group="query count",
            queries=str(len(queries)),
            gate="pass" if len(queries) == len(expected) else "FAIL",
        )
    )
    assert len(queries) == len(expected), (
        f"{label} ran {len(queries)} statements, the gate allows {len(expected)} "
        f"(with {existing} notifications, tokens, users and admins).\n"
        f"Ran:\n{listing(queries)}\n"
        "Expected:\n" + "\n".join(f"  {n:2}. {q}" for n, q in enumerate(expected, 1))
    )


@pytest.mark.parametrize("existing", SIZES, ids=lambda n: f"{n}-each")
@pytest.mark.parametrize("label", list(EXPECTED))
def test_request_query_count(label, existing, api, world, rows):
    user, auth = world(existing)
    send, status = prepared(label, api, user, auth)

    with CaptureQueriesContext(connection) as captured:
        response = send()

    assert response.status_code == status, response.content
    check(label, existing, captured.captured_queries, EXPECTED[label], rows)


@pytest.mark.parametrize("existing", SIZES, ids=lambda n: f"{n}-each")
def test_status_change_query_counts(existing, world, rows):
    user, _ = world(existing)

    with CaptureQueriesContext(connection) as captured:
        assert status.user_deactivate(user=user)
    check("user_deactivate", existing, captured.captured_queries, SERVICES["user_deactivate"], rows)

    row = Outbox.objects.get(kind=messages.DEACTIVATED_NOTICE)
    with CaptureQueriesContext(connection) as captured:
        notifications_deliver(outbox_id=row.pk)
    label = "notify (worker: the user and every admin)"
    check(label, existing, captured.captured_queries, SERVICES[label], rows)
    inserts = [q for q in captured.captured_queries if "INSERT INTO" in q["sql"]]
    assert len(inserts) == 1
    assert Notification.objects.filter(kind="account_deactivated").count() == existing + 1
