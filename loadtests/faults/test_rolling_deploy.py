"""A rolling deploy under load: two web and two worker nodes replaced, one at a
time, by a new release while Poisson signups flow through nginx.

The new release (loadtests.faults.release) is this tree plus an expand
migration: a column signup_user.release with a database default, which the
new release's model writes on every signup. The order is the one
docs/operations.md ("Deploying a new release") prescribes:

1. migrate (expand) from the new release while the old one serves;
2. web node 1: the new release on a port of its own, healthy and warm, put in
   nginx in the old node's place (a graceful reload), then the old node
   SIGTERMed (gunicorn finishes what it holds; nginx retries anything it
   refuses or resets on the other node) — a surge of one, as Kubernetes'
   maxSurge 1 / maxUnavailable 0; then web node 2;
3. worker node 1: SIGTERM (Dramatiq finishes the messages in hand, gives the
   fetched ones back, the relay stops), the new release's worker; then node 2.

Checks: the client sees only 202 (what failed on a stopping node, nginx
retried: counted from its log), signup p95 < 100 ms outside the swap windows
(from the new node's start until the old one exited), every email exactly once,
the outbox finished; the old release's rows written after the migration have
the column's default '', the new release's rows its value, and the new
release's processes loaded the new code (RELEASE_MARKER in their logs).
"""

import os
import time

import pytest

from loadtests.faults.deploy import (
    Swap,
    by_window,
    ci_rate,
    manage,
    migrate_watched,
    release_mismatches,
    swap_web,
    swap_worker,
)
from loadtests.faults.harness import other_answers, p95
from loadtests.faults.release import RELEASE_MARKER, make_release, remove_release

pytestmark = pytest.mark.timeout(900)

STEADY, GAP = 8.0, 3.0  # seconds of plain load before and after; between two steps
P95_BUDGET_MS = 100.0
# Of the load env's CI rate (scaled by the hash, as that env does). Two web
# and two worker nodes, nginx and the load's own threads share 2 cores here:
# at the full CI rate the p95 was ~130 ms before any deploy step (the one-node
# load env: ~60 ms). The scenario measures what a deploy adds, not capacity.
RATE_SHARE = float(os.environ.get("FAULTS_DEPLOY_RATE_SHARE", "0.6"))


@pytest.fixture
def new_release():
    """The new release's tree; removed after the scenario's processes stopped."""
    root = make_release()
    yield root
    remove_release(root)


# A p95 over budget (only that) is measured once more, as the bench env does:
# one burst of noise on a shared 2-core machine is not a regression.
@pytest.mark.flaky(reruns=1, only_rerun=["p95 .* >= budget"])
def test_a_rolling_deploy_under_load_drops_no_request_and_mails_once(
    new_release, scenario, balancer
):
    s = scenario("13 rolling deploy, 2 web + 2 workers", web_nodes=2, worker_nodes=2)
    s.sink.handler.rcpt_delay = 0.1  # a provider's envelope time: workers hold messages
    manage(s.stack, new_release, "makemigrations", "--check", "--dry-run", "signup")
    lb = balancer([s.port, *s.stack.more_ports])
    rate, hash_ms = ci_rate()
    rate = round(rate * RATE_SHARE, 1)
    load = s.load(rate=rate, port=lb.port, arrivals="poisson", idempotency=True, threads=16)
    time.sleep(STEADY)

    migrated_at = time.time()
    migrate_s, lock_wait_s, blockers = migrate_watched(s.stack, s.db, new_release)
    steps = [Swap("migrate", None, migrated_at, migrate_s, 0, migrated_at + migrate_s)]
    time.sleep(GAP)
    swaps = []
    for node in (0, 1):
        swaps.append(swap_web(s, node, lb, new_release))
        time.sleep(GAP)
    for node in (0, 1):
        swaps.append(swap_worker(s, node, new_release))
        time.sleep(GAP)
    time.sleep(STEADY - GAP)
    answers = load.stop()

    s.settle(answers, timeout=120)
    requests = lb.requests()
    old_after, new, wrong = release_mismatches(s.db, requests, swaps, migrated_at)
    steady, during = by_window(answers, steps + swaps)
    before = [a for a in answers if a.sent_at < migrated_at]
    o = s.outcome
    o.other = other_answers(answers)
    o.p95_fault_ms = p95(during)
    loaded = os.getloadavg()[0]
    o.notes += [
        f"{len(answers)} Poisson signups at {rate:g}/s (one hash {hash_ms:.0f} ms) through"
        f" nginx, {load.late} late;"
        f" retried by nginx: {sum(r.retried for r in requests)}; client saw non-202:"
        f" {o.other or 'none'}",
        f"p95 outside the migration and swaps {p95(steady):.1f} ms ({len(steady)} requests),"
        f" during {p95(during):.1f} ms ({len(during)}), before the deploy {p95(before):.1f} ms"
        f" ({len(before)}); load average {loaded:.2f}",
        f"expand migration {migrate_s:.1f} s while the old release served (longest lock wait"
        f" {lock_wait_s:.2f} s, behind {blockers or 'nothing'}); "
        + "; ".join(w.line() for w in swaps),
        f"release column: {old_after} old-release signups after the migration have '',"
        f" {new} new-release signups have its value; mismatches: {len(wrong)}",
    ]
    assert other_answers(answers) == ""
    assert all(w.status == 0 for w in swaps), [w.line() for w in swaps]
    s.check_settled()
    assert o.duplicates == 0
    assert wrong == []
    assert old_after > 0
    assert new > 0
    for w in swaps:
        assert RELEASE_MARKER in (s.stack.results / f"{w.name}.log").read_text(), w.name
    assert p95(steady) < P95_BUDGET_MS, f"p95 {p95(steady):.1f} ms >= budget {P95_BUDGET_MS:g}"
