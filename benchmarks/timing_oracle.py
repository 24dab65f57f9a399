"""Can response time tell whether an account exists? AUC per pair of classes.

    DATABASE_URL=postgres://.../payshift_timing SECRET_KEY=... REDIS_URL=... \
        python -m benchmarks.timing_oracle [-n 40] [--only login code-verify]

Samples -n requests per class through the full Django stack (test client,
middleware, ninja, service, PostgreSQL, on-commit enqueue into Redis) with
the production hasher, every class interleaved in one random order (so
machine noise hits all classes alike, ../shared/docs/measuring.md), a fresh address
per request (no cooldown or attempt limit in the way). For each pair of
classes of one endpoint it prints the AUC: the chance that a random request
of one class took longer than one of the other (0.5: indistinguishable;
reported as max(AUC, 1 - AUC)). Target (issue 8): below 0.6 for every pair.
Per class it also prints the median and p90 (loadtests.stats: nearest rank).

Classes: signup of a new / unverified / verified address; resend, verify
(wrong code), login code and password reset for an unverified (holding a
live code) / verified / unknown address; password login (wrong password),
code login and reset confirm (wrong code; both accounts hold a live code of
that purpose) for an unverified / verified / unknown address; an email
change (right password) to a free / taken / the user's own address;
password login (wrong password) for a verified account with two-factor
login on / an enrolment pending / off ("login-mfa", issue 21: the first
step must not tell which accounts have it before the password is right;
with the right password the answers differ anyway). It writes rows: point
DATABASE_URL at a scratch database.
"""

import argparse
import itertools
import json
import logging
import math
import os
import random
import time
import uuid

from loadtests.stats import percentile

PASSWORD = "correct horse battery staple"
ENDPOINTS = {
    "signup": ("/api/v1/signup", ("new", "unverified", "verified")),
    "resend": ("/api/v1/signup/resend", ("unverified", "verified", "unknown")),
    "verify": ("/api/v1/signup/verify", ("unverified", "verified", "unknown")),
    "code": ("/api/v1/auth/code", ("unverified", "verified", "unknown")),
    "reset": ("/api/v1/auth/password/reset", ("unverified", "verified", "unknown")),
    "login": ("/api/v1/auth/login", ("unverified", "verified", "unknown")),
    "code-verify": ("/api/v1/auth/code/verify", ("unverified", "verified", "unknown")),
    "reset-confirm": ("/api/v1/auth/password/reset/confirm", ("unverified", "verified", "unknown")),
    # A signed-in user asks to move to a new address that is free, another
    # account's, or the user's own (issue 20): the answer must not tell.
    "email-change": ("/api/v1/me/email", ("free", "taken", "own")),
    # A wrong password for a verified account with two-factor login on, with
    # an authenticator being set up (a pending device row), or without one
    # (issue 21): only wrong passwords, as a right one answers differently.
    "login-mfa": ("/api/v1/auth/login", ("totp-on", "pending", "totp-off")),
}
# login-mfa's classes: the authenticator each account has (None: no row).
TOTP_STATE = {"totp-on": "confirmed", "pending": "pending", "totp-off": None}
# The code each account holds, by endpoint (the signup's verification code otherwise).
CODE_PURPOSE = {"code-verify": "login", "reset-confirm": "reset"}


def p_value(value: float, n: int, m: int) -> float:
    """Two-sided p of an AUC this far from 0.5 between identical classes
    (Mann-Whitney's normal approximation): with 40 and 40 samples, 0.6 is
    p ~ 0.12, so one pair in nine crosses it by chance about half the time."""
    sd = math.sqrt((n + m + 1) / (12 * n * m))
    return math.erfc(abs(value - 0.5) / sd / math.sqrt(2))


def auc(xs: list[float], ys: list[float]) -> float:
    """P(x > y) + P(x == y) / 2 over all pairs (Mann-Whitney U / (n*m))."""
    wins = sum((x > y) + 0.5 * (x == y) for x in xs for y in ys)
    return wins / (len(xs) * len(ys))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--samples", type=int, default=40, help="requests per class")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--json", help="also write the raw samples and AUCs here")
    parser.add_argument("--only", nargs="+", choices=list(ENDPOINTS), help="these endpoints only")
    return parser.parse_args()


def setup_django() -> None:
    """Django with the production hasher, no per-IP limit, quiet logs, a migrated schema."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
    os.environ["RATE_LIMIT_PER_IP"] = "off"
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    # Every wrong password comes from one client: the per-IP failure limit
    # (its Redis work still runs for every class) must not turn them into 429s.
    settings.LOGIN_FAILURES_PER_IP = 10**9
    logging.disable(logging.WARNING)  # 400s and queued-email lines would drown the table
    call_command("migrate", verbosity=0)


class Accounts:
    """Fresh addresses of each class, and the verification_token of each one's signup."""

    def __init__(self) -> None:
        from django.contrib.auth.hashers import make_password

        self.run = uuid.uuid4().hex[:8]
        self.serial = itertools.count()
        self.password_hash = make_password(PASSWORD)
        self.tokens: dict[str, str] = {}  # address -> the verification_token of its signup
        self.headers: dict[str, dict] = {}  # address -> its bearer token header (email change)
        self.new_email: dict[str, str] = {}  # address -> the address it asks to move to

    def address(self, endpoint: str, kind: str) -> str:
        """An address of the given kind that no other request has touched.

        For verify, the client holds a signup's token as an attacker would
        (its own signup of the address; for an unknown address, of another).
        """
        from django.utils import timezone

        from signup.codes import verification_code_issue
        from signup.flows.verification import pending_signup_add, verification_token_new
        from signup.models import User, VerificationCode

        email = f"t-{self.run}-{next(self.serial)}@example.com"
        purpose = CODE_PURPOSE.get(endpoint, VerificationCode.Purpose.VERIFY_EMAIL)
        self.tokens[email] = verification_token_new()
        if kind == "unverified":
            user = User.objects.create(email=email, password=self.password_hash)
            verification_code_issue(user=user, purpose=purpose)
        elif kind == "verified":
            user = User.objects.create(
                email=email, password=self.password_hash, email_verified_at=timezone.now()
            )
            if endpoint in CODE_PURPOSE:
                verification_code_issue(user=user, purpose=purpose)
        if endpoint == "email-change":
            self.signed_in(email, kind)
        if endpoint == "login-mfa":
            self.two_factor(email, TOTP_STATE[kind])
        if endpoint == "verify":
            # The client holds a real token, as an attacker always can (its own
            # signup): of this address, or, for an unknown one, of another.
            owner = user if kind != "unknown" else self.other_account()
            pending_signup_add(
                user_id=owner.pk,
                token=self.tokens[email],
                password_hash=self.password_hash,
                full_name="",
            )
        return email

    def other_account(self):
        """An unverified account of another address (the attacker's own signup)."""
        from signup.models import User

        other = f"o-{self.run}-{next(self.serial)}@example.com"
        return User.objects.create(email=other, password=self.password_hash)

    def signed_in(self, email: str, kind: str) -> None:
        """A verified user at email, signed in, asking to move to a free, a
        taken (another account's) or its own address."""
        from django.utils import timezone

        from signup.models import User
        from signup.tokens import token_issue

        user = User.objects.create(
            email=email, password=self.password_hash, email_verified_at=timezone.now()
        )
        self.headers[email] = {"HTTP_AUTHORIZATION": f"Bearer {token_issue(user=user)[0]}"}
        new = f"n-{self.run}-{next(self.serial)}@example.com"
        if kind == "taken":
            User.objects.create(email=new, password=self.password_hash)
        self.new_email[email] = email if kind == "own" else new

    def two_factor(self, email: str, state: str | None) -> None:
        """A verified user at email with an authenticator confirmed (two-factor
        login on), pending (enrolment not confirmed) or none, as the API leaves it."""
        from django.utils import timezone

        from signup.authenticator import secret_encrypt, totp_secret_new
        from signup.models import TotpDevice, User

        user = User.objects.create(
            email=email, password=self.password_hash, email_verified_at=timezone.now()
        )
        if state is not None:
            confirmed = timezone.now() if state == "confirmed" else None
            secret = secret_encrypt(totp_secret_new())
            TotpDevice.objects.create(user=user, secret=secret, confirmed_at=confirmed)

    def body(self, endpoint: str, email: str) -> str:
        if endpoint == "email-change":
            return json.dumps({"new_email": self.new_email[email], "password": PASSWORD})
        return body(endpoint, email, self.tokens[email])


def body(endpoint: str, email: str, token: str) -> str:
    """The JSON request body: a wrong password or code wherever the endpoint takes one."""
    if endpoint == "signup":
        return json.dumps({"email": email, "password": PASSWORD})
    if endpoint in ("login", "login-mfa"):
        return json.dumps({"email": email, "password": "wrong horse battery staple"})
    if endpoint == "verify":
        return json.dumps({"email": email, "code": "000000", "verification_token": token})
    if endpoint == "code-verify":
        return json.dumps({"email": email, "code": "000000"})
    if endpoint == "reset-confirm":
        return json.dumps({"email": email, "code": "000000", "password": "a new passphrase"})
    return json.dumps({"email": email})


Class = tuple[str, str]  # (endpoint, kind)


def plan(endpoints: dict, samples: int) -> list[Class]:
    """Every class `samples` times, interleaved in one random order."""
    tasks = [
        (endpoint, kind)
        for endpoint, (_, kinds) in endpoints.items()
        for kind in kinds
        for _ in range(samples)
    ]
    random.shuffle(tasks)
    return tasks


def sample(
    client, accounts: Accounts, endpoints: dict, tasks: list[Class], warmup: int
) -> tuple[dict[Class, list[float]], dict[Class, set[int]]]:
    """Time every planned request (ms) and keep the statuses seen, per class."""
    # Accounts first, so the timed loop does nothing but requests.
    prepared = [(endpoint, kind, accounts.address(endpoint, kind)) for endpoint, kind in tasks]
    samples: dict[Class, list[float]] = {(e, k): [] for e, k in tasks}
    statuses: dict[Class, set[int]] = {(e, k): set() for e, k in tasks}

    for _ in range(warmup):
        for endpoint, (path, kinds) in endpoints.items():
            for kind in kinds:
                email = accounts.address(endpoint, kind)
                payload = accounts.body(endpoint, email)
                headers = accounts.headers.get(email, {})
                client.post(path, payload, content_type="application/json", **headers)
    for endpoint, kind, email in prepared:
        payload = accounts.body(endpoint, email)
        headers = accounts.headers.get(email, {})
        start = time.perf_counter()
        response = client.post(
            ENDPOINTS[endpoint][0], payload, content_type="application/json", **headers
        )
        elapsed = (time.perf_counter() - start) * 1000
        samples[(endpoint, kind)].append(elapsed)
        statuses[(endpoint, kind)].add(response.status_code)
    return samples, statuses


def class_table(
    endpoints: dict, samples: dict[Class, list[float]], statuses: dict[Class, set[int]], n: int
) -> list[str]:
    """Per class: statuses seen, median and p90 (loadtests.stats: nearest rank)."""
    lines = [
        f"{n} requests per class, interleaved; times in ms; AUC = max(p, 1 - p)",
        f"{'endpoint':13} {'class':11} {'status':8} {'median':>7} {'p90':>7}",
    ]
    for endpoint, (_, kinds) in endpoints.items():
        for kind in kinds:
            times = samples[(endpoint, kind)]
            codes = ",".join(str(s) for s in sorted(statuses[(endpoint, kind)]))
            lines.append(
                f"{endpoint:13} {kind:11} {codes:8}"
                f" {percentile(times, 50):7.2f} {percentile(times, 90):7.2f}"
            )
    return lines


def auc_table(endpoints: dict, samples: dict[Class, list[float]]) -> tuple[list[str], dict]:
    """Per pair of classes of one endpoint: max(AUC, 1 - AUC), its p if alike, the worst."""
    lines = [f"{'endpoint':13} {'pair':24} {'AUC':>5} {'p (same)':>8}"]
    aucs: dict[str, float] = {}
    for endpoint, (_, kinds) in endpoints.items():
        for a, b in itertools.combinations(kinds, 2):
            xs, ys = samples[(endpoint, a)], samples[(endpoint, b)]
            value = max(auc(xs, ys), 1 - auc(xs, ys))
            p = p_value(value, len(xs), len(ys))
            aucs[f"{endpoint} {a}/{b}"] = value
            flag = "" if value < 0.6 else "  >= 0.6"
            lines.append(f"{endpoint:13} {a + ' vs ' + b:24} {value:5.2f} {p:8.2f}{flag}")
    worst = max(aucs.values(), default=0.0)
    lines.append(f"\nworst pair: {worst:.2f} (target < 0.6)")
    return lines, aucs


def main() -> None:
    args = parse_args()
    endpoints = {e: ENDPOINTS[e] for e in args.only} if args.only else ENDPOINTS
    setup_django()
    from django.test import Client

    client = Client()
    accounts = Accounts()
    samples, statuses = sample(
        client, accounts, endpoints, plan(endpoints, args.samples), args.warmup
    )
    print("\n".join(class_table(endpoints, samples, statuses, args.samples)))
    print()
    lines, aucs = auc_table(endpoints, samples)
    print("\n".join(lines))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"samples": {f"{e} {k}": v for (e, k), v in samples.items()}, "auc": aucs},
                f,
                indent=1,
            )


if __name__ == "__main__":
    main()
