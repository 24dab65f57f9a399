"""A quick latency sample of POST /api/v1/signup through the full Django stack.

    DATABASE_URL=postgres://... SECRET_KEY=... python -m benchmarks.signup_sample -n 500

Django's test client (middleware, ninja, service, PostgreSQL, on-commit
enqueue into the configured Redis broker), the production Argon2id hasher,
a fresh address per request. Prints p50/p95/p99, queries per signup and the
hash cost. The CI gate is benchmarks/test_bench_requests.py; this is the
figure to quote from a quiet machine, without pytest around it.
"""

import argparse
import json
import os
import time
import uuid

from loadtests.stats import p50_p95_p99, percentile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--requests", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
    os.environ["RATE_LIMIT_PER_IP"] = "off"
    import django

    django.setup()
    from django.contrib.auth.hashers import get_hasher, make_password
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    call_command("migrate", verbosity=0)
    client = Client()
    run = uuid.uuid4().hex[:8]

    def signup(i: int) -> float:
        body = json.dumps(
            {"email": f"sample-{run}-{i}@example.com", "password": "correct horse battery staple"}
        )
        start = time.perf_counter()
        response = client.post("/api/v1/signup", body, content_type="application/json")
        elapsed = time.perf_counter() - start
        assert response.status_code == 202, response.content
        return elapsed * 1000

    for i in range(args.warmup):
        signup(-1 - i)
    with CaptureQueriesContext(connection) as queries:
        signup(10**9)
    query_count = len(queries)  # read now: later requests reset the log
    times = sorted(signup(i) for i in range(args.requests))
    p50, p95, p99 = p50_p95_p99(times)
    hashes = []
    for _ in range(100):
        start = time.perf_counter()
        make_password("correct horse battery staple")
        hashes.append((time.perf_counter() - start) * 1000)

    hasher = get_hasher()
    print(
        f"database: {connection.vendor}; hasher: {hasher.algorithm} "
        f"(m={hasher.memory_cost} KiB, t={hasher.time_cost}, p={hasher.parallelism})"
    )
    print(
        f"signup over {len(times)} requests: p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
        f"p99 {p99:.1f} ms, max {times[-1]:.1f} ms"
    )
    print(f"queries per signup: {query_count} (BEGIN/COMMIT and the post-commit UPDATE included)")
    print(f"password hash: median {percentile(hashes, 50):.1f} ms over {len(hashes)}")


if __name__ == "__main__":
    main()
