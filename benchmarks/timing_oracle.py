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

Classes: signup of a new / unverified / verified address; resend, verify
(wrong code), login code and password reset for an unverified (holding a
live code) / verified / unknown address; password login (wrong password),
code login and reset confirm (wrong code; both accounts hold a live code of
that purpose) for an unverified / verified / unknown address. It writes
rows: point DATABASE_URL at a scratch database.
"""

import argparse
import itertools
import json
import logging
import math
import os
import random
import statistics
import time
import uuid

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
}
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--samples", type=int, default=40, help="requests per class")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--json", help="also write the raw samples and AUCs here")
    parser.add_argument("--only", nargs="+", choices=list(ENDPOINTS), help="these endpoints only")
    args = parser.parse_args()
    endpoints = {e: ENDPOINTS[e] for e in args.only} if args.only else ENDPOINTS

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
    os.environ["RATE_LIMIT_PER_IP"] = "off"
    import django

    django.setup()
    from django.conf import settings

    # Every wrong password comes from one client: the per-IP failure limit
    # (its Redis work still runs for every class) must not turn them into 429s.
    settings.LOGIN_FAILURES_PER_IP = 10**9
    logging.disable(logging.WARNING)  # 400s and queued-email lines would drown the table
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command
    from django.test import Client
    from django.utils import timezone

    from signup.models import User, VerificationCode
    from signup.services import verification_code_issue
    from signup.verification_tokens import pending_signup_add, verification_token_new

    call_command("migrate", verbosity=0)
    client = Client()
    run = uuid.uuid4().hex[:8]
    serial = itertools.count()
    password_hash = make_password(PASSWORD)

    tokens: dict[str, str] = {}  # address -> the verification_token of its signup

    def address(endpoint: str, kind: str) -> str:
        """An address of the given kind that no other request has touched.

        For verify, the client holds a signup's token as an attacker would
        (its own signup of the address); of an unknown address, a random one.
        """
        email = f"t-{run}-{next(serial)}@example.com"
        purpose = CODE_PURPOSE.get(endpoint, VerificationCode.Purpose.VERIFY_EMAIL)
        tokens[email] = verification_token_new()
        if kind == "unverified":
            user = User.objects.create(email=email, password=password_hash)
            verification_code_issue(user=user, purpose=purpose)
        elif kind == "verified":
            user = User.objects.create(
                email=email, password=password_hash, email_verified_at=timezone.now()
            )
            if endpoint in CODE_PURPOSE:
                verification_code_issue(user=user, purpose=purpose)
        if kind != "unknown" and endpoint == "verify":
            pending_signup_add(
                user_id=user.pk, token=tokens[email], password_hash=password_hash, full_name=""
            )
        return email

    def body(endpoint: str, email: str) -> str:
        if endpoint == "signup":
            return json.dumps({"email": email, "password": PASSWORD})
        if endpoint == "login":
            return json.dumps({"email": email, "password": "wrong horse battery staple"})
        if endpoint == "verify":
            return json.dumps(
                {"email": email, "code": "000000", "verification_token": tokens[email]}
            )
        if endpoint == "code-verify":
            return json.dumps({"email": email, "code": "000000"})
        if endpoint == "reset-confirm":
            return json.dumps({"email": email, "code": "000000", "password": "a new passphrase"})
        return json.dumps({"email": email})

    tasks = [
        (endpoint, kind)
        for endpoint, (_, kinds) in endpoints.items()
        for kind in kinds
        for _ in range(args.samples)
    ]
    random.shuffle(tasks)
    # Accounts first, so the timed loop does nothing but requests.
    prepared = [(endpoint, kind, address(endpoint, kind)) for endpoint, kind in tasks]
    samples: dict[tuple[str, str], list[float]] = {(e, k): [] for e, k in tasks}
    statuses: dict[tuple[str, str], set[int]] = {(e, k): set() for e, k in tasks}

    for _ in range(args.warmup):
        for endpoint, (path, kinds) in endpoints.items():
            for kind in kinds:
                payload = body(endpoint, address(endpoint, kind))
                client.post(path, payload, content_type="application/json")
    for endpoint, kind, email in prepared:
        payload = body(endpoint, email)
        start = time.perf_counter()
        response = client.post(ENDPOINTS[endpoint][0], payload, content_type="application/json")
        elapsed = (time.perf_counter() - start) * 1000
        samples[(endpoint, kind)].append(elapsed)
        statuses[(endpoint, kind)].add(response.status_code)

    print(f"{args.samples} requests per class, interleaved; times in ms; AUC = max(p, 1 - p)")
    print(f"{'endpoint':13} {'class':11} {'status':8} {'median':>7} {'p90':>7}")
    for endpoint, (_, kinds) in endpoints.items():
        for kind in kinds:
            times = samples[(endpoint, kind)]
            cuts = statistics.quantiles(times, n=10)
            codes = ",".join(str(s) for s in sorted(statuses[(endpoint, kind)]))
            print(
                f"{endpoint:13} {kind:11} {codes:8} {statistics.median(times):7.2f} {cuts[8]:7.2f}"
            )
    print()
    print(f"{'endpoint':13} {'pair':24} {'AUC':>5} {'p (same)':>8}")
    worst = 0.0
    aucs = {}
    for endpoint, (_, kinds) in endpoints.items():
        for a, b in itertools.combinations(kinds, 2):
            xs, ys = samples[(endpoint, a)], samples[(endpoint, b)]
            value = max(auc(xs, ys), 1 - auc(xs, ys))
            p = p_value(value, len(xs), len(ys))
            worst = max(worst, value)
            aucs[f"{endpoint} {a}/{b}"] = value
            flag = "" if value < 0.6 else "  >= 0.6"
            print(f"{endpoint:13} {a + ' vs ' + b:24} {value:5.2f} {p:8.2f}{flag}")
    print(f"\nworst pair: {worst:.2f} (target < 0.6)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"samples": {f"{e} {k}": v for (e, k), v in samples.items()}, "auc": aucs},
                f,
                indent=1,
            )


if __name__ == "__main__":
    main()
