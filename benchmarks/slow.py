"""A deliberate slowdown on the signup path, to show that the latency gate fails.

BENCH_SLOW_MS=150 tox -e bench   (benchmarks/conftest.py installs it)
BENCH_SLOW_MS=25 BENCH_SLOW_PATH=/api/v1/me tox -e bench   (the 20 ms read gate fails)
"""

import os
import time

SIGNUP_PATH = os.environ.get("BENCH_SLOW_PATH") or "/api/v1/signup"


def slow_ms() -> float:
    return float(os.environ.get("BENCH_SLOW_MS") or 0)


class SlowSignupMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.delay = slow_ms() / 1000

    def __call__(self, request):
        if request.path == SIGNUP_PATH:
            time.sleep(self.delay)
        return self.get_response(request)
