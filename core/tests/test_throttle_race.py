"""The per-IP request limit (core.throttles.ClientIPThrottle) holds exactly under
concurrency: one atomic Redis counter per (endpoint, client IP, window), not a
list of timestamps read and written back apart."""

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.test import RequestFactory

from core.tests.gunicorn_race import clear_of_window_edge, gunicorn, post_together
from core.throttles import ClientIPThrottle

RATE, DURATION = 10, 3600
PARALLEL = 40


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_parallel_posts_from_one_ip_let_exactly_the_rate_through(tmp_path):
    """40 bodies the endpoint refuses (422) at once, through gunicorn's
    processes and threads: the throttle runs first, so exactly RATE reach it."""
    with gunicorn(tmp_path, RATE_LIMIT_PER_IP=f"{RATE}/h") as url:
        clear_of_window_edge(DURATION)
        answers = post_together(f"{url}/api/v1/signup", [{}] * PARALLEL)

    statuses = Counter(status for status, _, _ in answers)
    assert statuses == {422: RATE, 429: PARALLEL - RATE}
    for status, headers, body in answers:
        if status == 429:
            assert body["code"] == "rate_limited"
            assert 1 <= int(headers["Retry-After"]) <= DURATION


def test_threads_sharing_one_throttle_let_exactly_the_rate_through(settings):
    """The router's throttle object is shared by every thread of a worker."""
    settings.RATE_LIMIT_PER_IP = f"{RATE}/h"
    throttle = ClientIPThrottle("race")
    request = RequestFactory().post("/", REMOTE_ADDR="198.51.100.9")
    clear_of_window_edge(DURATION)
    start = threading.Barrier(PARALLEL)

    def ask(_):
        start.wait(timeout=10)
        return throttle.allow_request(request)

    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        allowed = list(pool.map(ask, range(PARALLEL)))

    assert allowed.count(True) == RATE
    assert 1 <= throttle.wait() <= DURATION
