"""timing_oracle's tables, from made-up samples (no Django, no requests)."""

import json

from benchmarks.timing_oracle import ENDPOINTS as ORACLE_ENDPOINTS
from benchmarks.timing_oracle import PASSWORD, TOTP_STATE, auc_table, body, class_table

ENDPOINTS = {"resend": ("/api/v1/signup/resend", ("unverified", "verified"))}


def test_class_table_median_and_p90_are_nearest_rank():
    samples = {
        ("resend", "unverified"): [float(n) for n in range(1, 11)],
        ("resend", "verified"): [5.0] * 10,
    }
    statuses = {("resend", "unverified"): {202}, ("resend", "verified"): {202, 429}}
    lines = class_table(ENDPOINTS, samples, statuses, 10)
    assert lines[2].split() == ["resend", "unverified", "202", "5.00", "9.00"]  # not 5.5 / 9.9
    assert lines[3].split() == ["resend", "verified", "202,429", "5.00", "5.00"]


def test_auc_table_reports_the_worst_pair():
    samples = {("resend", "unverified"): [1.0, 2.0], ("resend", "verified"): [3.0, 4.0]}
    lines, aucs = auc_table(ENDPOINTS, samples)
    assert aucs == {"resend unverified/verified": 1.0}
    assert lines[1].endswith(">= 0.6")
    assert lines[-1] == "\nworst pair: 1.00 (target < 0.6)"


def test_verify_carries_the_signup_token():
    assert '"verification_token": "tok"' in body("verify", "a@example.com", "tok")
    assert "verification_token" not in body("resend", "a@example.com", "tok")


def test_login_mfa_compares_wrong_passwords_only():
    """With the right password the answers differ (mfa_token or token): only
    a wrong one can show whether the first step tells accounts apart."""
    sent = json.loads(body("login-mfa", "a@example.com", "tok"))
    assert sent["password"] != PASSWORD
    assert sent == json.loads(body("login", "a@example.com", "tok"))
    path, kinds = ORACLE_ENDPOINTS["login-mfa"]
    assert path == "/api/v1/auth/login"
    assert set(kinds) == set(TOTP_STATE)
    assert None in TOTP_STATE.values()
    assert "confirmed" in TOTP_STATE.values()
