"""Client retries: POST /api/v1/signup with an Idempotency-Key, retried through faults.

Under a steady load of other signups, clients retry the same body with the
same key: after giving up on an answer themselves (a 5 ms client timeout:
the server still does the work), through a 20 s broker outage, twice at
once, and again after Redis is back. Every answer a client gets must be the
first one, byte for byte, and each address gets exactly one email (and one
verification code).
"""

import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from loadtests.faults.harness import (
    SIGNUP,
    Answer,
    backlog_recovery,
    between,
    other_answers,
    p95,
    post_json,
    signup_body,
)

pytestmark = pytest.mark.timeout(600)

RATE = 5.0
OUTAGE = 20.0
GIVE_UP = 0.005  # the client's timeout on a try it abandons (a signup takes ~30 ms)


@dataclass
class RetryingClient:
    port: int
    email: str
    key: str = field(default_factory=lambda: f"retry-{secrets.token_hex(8)}")
    body: dict = field(init=False)
    tries: list[Answer] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.body = signup_body(self.email)  # the same body (password) on every try

    def send(self, timeout: float = 5.0) -> Answer:
        answer = post_json(
            self.port, SIGNUP, self.body, timeout=timeout, headers={"Idempotency-Key": self.key}
        )
        self.tries.append(answer)
        return answer

    @property
    def answered(self) -> list[Answer]:
        return [a for a in self.tries if a.status]


def test_a_retrying_client_gets_one_answer_and_one_email(scenario):
    s = scenario("5 client retries, Idempotency-Key")
    load = s.load(rate=RATE)
    tag = time.time_ns() % 10**9
    clients: list[RetryingClient] = []

    def client(name: str) -> RetryingClient:
        clients.append(RetryingClient(s.port, f"5-{tag}-{name}-{len(clients)}@example.com"))
        return clients[-1]

    time.sleep(5)
    for _ in range(5):  # gave up on the first try, broker up
        c = client("timeout")
        c.send(timeout=GIVE_UP)
        c.send()

    s.redis.stop()
    down_at = time.time()
    for _ in range(8):  # answered, then a try given up on, then answered again
        c = client("outage")
        c.send()
        c.send(timeout=GIVE_UP)
        c.send()
    for _ in range(4):  # given up on during the outage; retried after it
        client("late").send(timeout=GIVE_UP)
    with ThreadPoolExecutor(max_workers=2) as pool:  # two tries at once
        for _ in range(4):
            c = client("twice")
            list(pool.map(lambda c: c.send(), [c, c]))
    time.sleep(max(0.0, down_at + OUTAGE - time.time()))
    s.redis.start()
    up_at = time.time()
    for c in clients:  # one more retry each, the broker back
        c.send()
    time.sleep(5)
    answers = load.stop()

    everyone = answers + [t for c in clients for t in c.tries]
    mails = s.settle(everyone, timeout=120)
    o = s.outcome
    o.other = other_answers(answers)
    o.p95_fault_ms = p95(between([a for a in everyone if a.status], down_at, up_at))
    o.recovery_s = backlog_recovery([a for a in everyone if a.status == 202], mails, up_at)
    keys = s.db.idempotency_keys()
    codes = dict(
        s.db.rows(
            "SELECT u.email, count(c.id) FROM signup_user u"
            " LEFT JOIN signup_verificationcode c ON c.user_id = u.id"
            " WHERE u.email = ANY(%s) GROUP BY u.email",
            ([c.email for c in clients],),
        )
    )
    tries = [t for c in clients for t in c.tries]
    o.notes += [
        f"{len(clients)} retrying clients, {len(tries)} tries: {sum(1 for t in tries if t.status)}"
        f" answered, {sum(1 for t in tries if not t.status)} given up on by the client;"
        f" {len(keys)} keys stored; codes per client address: {sorted(set(codes.values()))}",
        f"other traffic: {len(answers)} signups at {RATE:g}/s, {load.late} late",
    ]

    assert other_answers(answers) == ""
    for c in clients:
        first = c.answered[0]
        assert first.status == 202, first
        body = first.json()
        assert body.pop("verification_token")  # the same in every answer: the line below
        assert body == {"status": "verification_pending", "email": c.email}
        assert all((t.status, t.body) == (202, first.body) for t in c.answered), c.tries
        assert len(mails.get(c.email, ())) == 1, (c.email, mails.get(c.email))
    assert {c.key for c in clients} <= set(keys)
    assert set(codes.values()) == {1}, codes
    s.check_settled()
    assert o.duplicates == 0
