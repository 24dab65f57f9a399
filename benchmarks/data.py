"""Rows the benchmarks need, created fast (setup time is not measured, but adds up)."""

import itertools
import uuid

from signup.codes import verification_code_issue
from signup.flows.verification import pending_signup_add, verification_token_new
from signup.models import User, VerificationCode

PASSWORD = "correct horse battery staple"
_serial = itertools.count()
_run = uuid.uuid4().hex[:8]


def fresh_email(prefix: str = "bench") -> str:
    """An address no earlier round used (no cooldown, no existing account)."""
    return f"{prefix}-{_run}-{next(_serial)}@example.com"


def unverified_user(*, password_hash: str, email: str | None = None) -> User:
    return User.objects.create(email=email or fresh_email("user"), password=password_hash)


def verify_request(*, password_hash: str) -> dict:
    """A POST /signup/verify body that succeeds: an unverified user with its
    signup recorded (the token signup answered) and a live code, as the
    worker leaves it."""
    user = unverified_user(password_hash=password_hash)
    token = verification_token_new()
    pending_signup_add(user_id=user.pk, token=token, password_hash=password_hash, full_name="")
    code = verification_code_issue(user=user, purpose=VerificationCode.Purpose.VERIFY_EMAIL)
    return {"email": user.email, "code": code, "verification_token": token}


def population(*, users: int, admins: int, password_hash: str) -> None:
    """Existing accounts: `users` regular ones and `admins` active staff."""
    User.objects.bulk_create(
        [
            User(email=fresh_email("existing"), password=password_hash, is_staff=False)
            for _ in range(users)
        ]
        + [
            User(email=fresh_email("admin"), password=password_hash, is_staff=True)
            for _ in range(admins)
        ],
        batch_size=2000,
    )
