"""What the frameworks cost before a signup does anything: the CPU floor.

    python -m loadtests.floor [--rate 20] [--duration 30]

Starts the load stack (gunicorn, rundramatiq, PostgreSQL, Redis, the SMTP
sink: loadtests.stack, as the load runner does), then, at Poisson arrivals:

- web: GET /api/v1/health/live (gunicorn's sync worker, Django's middleware,
  ninja's routing, a JSON answer; no database, no Redis): gunicorn's CPU per
  request;
- worker: one broker message per arrival naming an outbox row that was sent
  already (Dramatiq's fetch, decode, middleware and ack, the database
  connection's check and the claim that finds nothing to do): the worker's
  and Redis's CPU per message, beyond their idle cost, measured first.

Beside the load runner's CPU per signup (one hash, the request, one job),
these say how much of it no change to the signup's own code can remove
(docs/capacity.md, issue 23). Read on a quiet machine: loadtests.cpu counts
every gunicorn and postgres process there is.
"""

import argparse
import os
import random
import sys
import time
import urllib.request
from pathlib import Path

from loadtests import cpu
from loadtests.stack import ROOT, Stack

LIVE = "/api/v1/health/live"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0, help="arrivals/s (Poisson)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per part")
    parser.add_argument("--threads", type=int, default=16, help="rundramatiq threads")
    parser.add_argument("--results", type=Path, default=ROOT / "results" / "floor")
    args = parser.parse_args(argv)
    stack = Stack(results=args.results, web_workers=2 * (os.cpu_count() or 1))
    stack.worker_threads = args.threads
    stack.start()
    try:
        stack.warm_up()
        web = web_floor(stack, args.rate, args.duration)
        worker, redis, idle = worker_floor(stack, args.rate, args.duration)
    finally:
        stack.stop()
    print(
        f"floor at {args.rate:g}/s Poisson, {args.duration:g} s each:"
        f" web {web:.2f} ms per GET {LIVE};"
        f" worker {worker:.2f} + Redis {redis:.2f} ms per message that finds nothing to do"
        f" (beyond idle: worker {idle[0]:.1f}, Redis {idle[1]:.1f} ms/s)"
    )
    return 0


def arrivals(rate: float, duration: float):
    """Yield at Poisson arrivals for duration seconds (sleeping in between)."""
    started = time.monotonic()
    due = started
    while True:
        due += random.expovariate(rate)
        if due - started > duration:
            return
        time.sleep(max(0.0, due - time.monotonic()))
        yield


def component_seconds(name: str) -> float:
    snap = cpu.snapshot()
    return snap.by_component[name] if snap else 0.0


def web_floor(stack: Stack, rate: float, duration: float) -> float:
    """gunicorn's CPU ms per trivial request."""
    before, count = component_seconds("web"), 0
    for _ in arrivals(rate, duration):
        with urllib.request.urlopen(stack.url + LIVE, timeout=5) as answer:  # noqa: S310 (http, ours)
            answer.read()
        count += 1
    return 1000 * (component_seconds("web") - before) / max(count, 1)


def worker_floor(
    stack: Stack, rate: float, duration: float
) -> tuple[float, float, tuple[float, float]]:
    """(worker ms, Redis ms) per message beyond idle, and their idle ms/s."""
    os.environ.update(stack.env())
    os.environ["DJANGO_SETTINGS_MODULE"] = "core.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from messaging import tasks
    from messaging.models import Outbox

    row = None
    for _ in range(100):  # the warm-up's rows are being delivered
        row = Outbox.objects.filter(state=Outbox.State.SENT).order_by("pk").first()
        if row is not None:
            break
        time.sleep(0.1)
    if row is None:
        raise RuntimeError("no outbox row was sent after the warm-up")
    time.sleep(5)  # the warm-up's jobs are done
    quiet = 10.0
    w0, r0 = component_seconds("worker"), component_seconds("redis")
    time.sleep(quiet)
    idle = ((component_seconds("worker") - w0) / quiet, (component_seconds("redis") - r0) / quiet)
    w0, r0 = component_seconds("worker"), component_seconds("redis")
    started, count = time.monotonic(), 0
    for _ in arrivals(rate, duration):
        tasks.send_email.send(row.pk)
        count += 1
    time.sleep(2)  # the last messages are handled
    seconds = time.monotonic() - started
    worker = component_seconds("worker") - w0 - idle[0] * seconds
    redis = component_seconds("redis") - r0 - idle[1] * seconds
    n = max(count, 1)
    return 1000 * worker / n, 1000 * redis / n, (1000 * idle[0], 1000 * idle[1])


if __name__ == "__main__":
    raise SystemExit(main())
