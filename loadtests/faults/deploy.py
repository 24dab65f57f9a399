"""Helpers of the graceful-stop and rolling-deploy scenarios.

A node is stopped as an orchestrator stops a container: SIGTERM to its main
process only (gunicorn's master, rundramatiq's supervisor), which stops its
own children; SIGTERM to the whole process group would also reach Dramatiq's
worker processes directly, and a second SIGTERM (the supervisor forwards one)
makes them exit at once ("Killing worker process...").
"""

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis

from core.testing import free_port
from loadtests.faults.balancer import Request
from loadtests.faults.harness import SIGNUP, Answer, post_json, signup_body
from loadtests.stack import ROOT, node_name

GUNICORN_GRACE_S = 30  # gunicorn's graceful_timeout (its default; core.gunicorn_conf keeps it)
CI_RATE = float(os.environ.get("LOAD_CI_RATE", "20"))  # the load env's rate (tox.ini)
REFERENCE_HASH_MS = float(os.environ.get("LOAD_REFERENCE_HASH_MS", "15"))


def ci_rate() -> tuple[float, float]:
    """(rate, hash ms): the load env's CI rate, scaled down as it is (loadtests.run)
    where one Argon2id hash, measured now, is slower than the reference machine's."""
    from loadtests.run import one_hash_ms

    hash_ms = one_hash_ms()
    return round(CI_RATE * min(1.0, REFERENCE_HASH_MS / hash_ms), 1), hash_ms


@dataclass
class Swap:
    """One node replaced, from `start` (time.time()) to `end`: for web, the new
    node started on a port of its own (`port`), healthy and warm, put in the
    balancer, then the old one SIGTERMed; for a worker, SIGTERM, then the new
    one. The old process took `stopped_s` to exit, with status `status`."""

    name: str
    port: int | None
    start: float
    stopped_s: float
    status: int
    end: float

    def line(self) -> str:
        return (
            f"{self.name}: {self.end - self.start:.1f} s in all, the old one exited"
            f" ({self.status}) {self.stopped_s:.1f} s after SIGTERM"
        )


def manage(stack, root: Path, *args: str) -> subprocess.CompletedProcess:
    """manage.py of the release at root, with the stack's environment."""
    env = {**stack.env(), "PYTHONPATH": str(root)}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=root, env=env,
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip


def migrate_watched(stack, db, root: Path) -> tuple[float, float, list[str]]:
    """`migrate` from the release at root while sampling what waits on locks:
    (seconds it took, longest lock wait seen in s, the blockers' queries)."""
    stop = threading.Event()
    waits: list[float] = []
    blockers: set[str] = set()

    def sample() -> None:
        while not stop.wait(0.05):
            for wait_s, blocker in db.rows(
                "SELECT extract(epoch FROM now() - a.query_start),"
                " b.state || ': ' || left(b.query, 90)"
                " FROM pg_stat_activity a CROSS JOIN LATERAL unnest(pg_blocking_pids(a.pid)) p"
                " JOIN pg_stat_activity b ON b.pid = p WHERE a.datname = %s",
                (db.name,),
            ):
                waits.append(float(wait_s))
                blockers.add(blocker)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    started = time.time()
    try:
        manage(stack, root, "migrate", "--no-input")
    finally:
        stop.set()
        watcher.join(5)
    return time.time() - started, max(waits, default=0.0), sorted(blockers)


def swap_web(scenario, node: int, balancer, root: Path = ROOT) -> Swap:
    """Replace web node `node` as a rolling update with a surge does (Kubernetes'
    maxSurge 1, maxUnavailable 0): the release at root on a new port, healthy and
    warm (its warm-up's addresses are owed their email too), put in the balancer
    in the old node's place (a graceful reload), then the old node SIGTERMed: it
    finishes what it holds, and serving capacity never drops."""
    stack = scenario.stack
    name = node_name("web", node)
    ports = [stack.port, *stack.more_ports]
    old, new = ports[node], free_port()
    start = time.time()
    stack.spawn_web(node, root=root, name=f"{name}-new", port=new)
    url = f"http://127.0.0.1:{new}"
    stack.wait_ready(urls=[url])
    scenario.warmed += stack.warm_up(urls=[url])
    balancer.replace(old, new)
    stopped, status = stack.stop_process(name, timeout=GUNICORN_GRACE_S + 10)
    if node == 0:
        stack.port = new
    else:
        stack.more_ports[node - 1] = new
    return Swap(f"{name}-new", new, start, stopped, status, time.time())


def swap_worker(scenario, node: int, root: Path = ROOT, grace: float = 90.0) -> Swap:
    """SIGTERM worker node `node` (its supervisor), then start one from root."""
    stack = scenario.stack
    name = node_name("worker", node)
    start = time.time()
    stopped, status = stack.stop_process(name, timeout=grace)
    stack.spawn_worker(node, root=root, name=f"{name}-new")
    return Swap(f"{name}-new", None, start, stopped, status, time.time())


def by_window(answers: list[Answer], swaps: list[Swap]) -> tuple[list[Answer], list[Answer]]:
    """(answers to requests sent outside every swap's window, those sent inside one)."""
    outside: list[Answer] = []
    inside: list[Answer] = []
    for a in answers:
        during = any(w.start <= a.sent_at < w.end for w in swaps)
        (inside if during else outside).append(a)
    return outside, inside


def acks_held(redis_url: str, namespace: str) -> int:
    """Messages fetched by a worker and not yet acked (Dramatiq's Redis ack sets)."""
    client = redis.Redis.from_url(redis_url)
    try:
        return sum(client.scard(key) for key in client.scan_iter(f"{namespace}:__acks__.*"))
    finally:
        client.close()


def finished_after(requests: list[Request], port: int, moment: float) -> list[Request]:
    """Requests node `port` answered that it had started before moment (in flight then)."""
    addr = f"127.0.0.1:{port}"
    return [r for r in requests if r.upstreams[-1:] == [addr] and r.at - r.seconds < moment <= r.at]


def slow_requests(port: int, count: int, delay: float, prefix: str) -> Callable[[], list[Answer]]:
    """Send count signups at once straight to one node, each held `delay` s in its
    worker (gunicorn_delay_conf.py); returns a function that waits for their answers."""
    answers: list[Answer] = []

    def one(n: int) -> None:
        local = f"{prefix}-{n}"
        headers = {"X-Fault-Delay": str(delay), "Idempotency-Key": local}
        answer = post_json(port, SIGNUP, signup_body(f"{local}@example.com"),
                           timeout=delay + 30, headers=headers)  # fmt: skip
        answers.append(answer)

    threads = [threading.Thread(target=one, args=(n,), daemon=True) for n in range(count)]
    for thread in threads:
        thread.start()

    def wait() -> list[Answer]:
        for thread in threads:
            thread.join(delay + 35)
        return answers

    return wait


def release_mismatches(db, requests: list[Request], swaps: list[Swap], migrated_at: float):
    """Signups whose `release` column is not what the node that created them writes.

    The new release's web nodes listen on ports of their own (swap_web), so
    the port that answered names the release. Returns (old rows after the
    migration, new rows, mismatches).
    """
    from loadtests.faults.release import COLUMN, NEW_RELEASE

    new_nodes = {f"127.0.0.1:{w.port}" for w in swaps if w.port}
    query = f"SELECT split_part(email, '@', 1), {COLUMN} FROM signup_user"  # noqa: S608 (ours)
    stored = dict(db.rows(query))
    old_after, new, mismatches = 0, 0, []
    for r in requests:
        if r.uri != SIGNUP or r.status != 202 or r.key not in stored or not r.upstreams:
            continue
        node = r.upstreams[-1]
        expected = NEW_RELEASE if node in new_nodes else ""
        if expected == NEW_RELEASE:
            new += 1
        elif r.at - r.seconds >= migrated_at:
            old_after += 1
        if stored[r.key] != expected:
            mismatches.append((r.key, node, stored[r.key]))
    return old_after, new, mismatches
