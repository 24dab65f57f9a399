"""Helpers for the accounts tests: paths, a verified user, codes as the worker makes
them, parallel calls."""

import threading
from concurrent.futures import ThreadPoolExecutor

from django.db import connection

from signup.codes import verification_code_issue
from signup.models import VerificationCode
from signup.tests.conftest import PASSWORD, make_user
from signup.tokens import token_issue

LOGIN = "/api/v1/auth/login"
CODE = "/api/v1/auth/code"
CODE_VERIFY = "/api/v1/auth/code/verify"
RESET = "/api/v1/auth/password/reset"
RESET_CONFIRM = "/api/v1/auth/password/reset/confirm"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/me"
WALLET = "/api/v1/me/wallet"
NOTIFICATIONS = "/api/v1/me/notifications"
READ_ALL = "/api/v1/me/notifications/read-all"

EMAIL = "ada@example.com"
NEW_PASSWORD = "a brand new passphrase"
INVALID_CREDENTIALS = {"detail": "Invalid email or password.", "code": "invalid_credentials"}
INVALID_CODE = {"detail": "Invalid or expired code.", "code": "invalid_code"}

Purpose = VerificationCode.Purpose


def verified_user(email: str = EMAIL, **extra):
    return make_user(email, verified=True, **extra)


def code_for(user, purpose: str) -> str:
    """What the worker does when it sends a login or reset email."""
    return verification_code_issue(user=user, purpose=purpose)


def bearer(raw: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def token_for(user) -> str:
    return token_issue(user=user)[0]


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


__all__ = ["PASSWORD"]


def together(n: int, call) -> list:
    """call(i) in n threads released at once; each closes its connection."""
    start = threading.Barrier(n)

    def run(i):
        try:
            start.wait(timeout=10)
            return call(i)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))
