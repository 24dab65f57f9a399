"""Locust scenarios for the signup API (docs/api.md).

One user class per scenario; pick one by class name or by its tag:
    locust -f loadtests/locustfile.py Mixed            (or: --tags mixed)
    signup         new addresses at a steady arrival rate
    signup_verify  signup, read the code from the mail sink's store, verify
    mixed          realistic traffic with expected 400/422/429 answers
    spike          like signup, but the arrival rate jumps 10x for 20 s
    returning      existing accounts (--accounts): log in (by password, or by a
                   code read from the mail store), me, wallet, notifications,
                   mark read, log out; one request per arrival

--arrival-rate sets arrivals per second over all users (default: one per
user per second) and --arrivals the process (poisson, the default, or
uniform); users interleave on one grid (loadtests.pacing) instead of firing
together. Every request is also recorded with its exact time
(--record-dir), because Locust's own percentiles are bucketed.
"""

import csv
import itertools
import json
import logging
import random
import string
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import gevent
from locust import FastHttpUser, events, tag, task
from locust.exception import StopUser
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV

from loadtests.mailstore import MailStore
from loadtests.pacing import ARRIVALS, Grid, Pacer, Schedule
from loadtests.record import EMAILS_CAUSED, Recorder, Row

logger = logging.getLogger("loadtests")

SIGNUP = "/api/v1/signup"
VERIFY = "/api/v1/signup/verify"
# address -> the verification_token its signup answered (bounded: oldest dropped)
TOKENS: dict[str, str] = {}
RESEND = "/api/v1/signup/resend"
COOLDOWN = 60  # settings.SIGNUP_CODE_COOLDOWN_SECONDS
IN_COOLDOWN = COOLDOWN - 20  # seconds: surely inside, even with queueing
PAST_COOLDOWN = COOLDOWN + 10  # seconds: surely past it
CODES_PER_HOUR = 5
MAIL_TIMEOUT = 30.0


@events.init_command_line_parser.add_listener
def _options(parser) -> None:
    """Custom options; Locust's own add_argument (not a group's) shows them in the web UI."""
    parser.add_argument(
        "--arrival-rate",
        type=float,
        default=0.0,
        help="arrivals per second over all users (0: one per user per second)",
    )
    parser.add_argument(
        "--arrivals",
        choices=ARRIVALS,
        default="poisson",
        help="arrival process: poisson (exponential gaps, the default) or uniform (evenly spaced)",
    )
    parser.add_argument("--mail-store", default="", help="the sink's JSONL store (SignupVerify)")
    parser.add_argument(
        "--web-hosts",
        default="",
        include_in_web_ui=False,
        help="comma-separated base URLs of several web nodes: users are spread over them",
    )
    parser.add_argument(
        "--accounts", default="", help="JSON [{email, password}] of existing accounts (Returning)"
    )
    parser.add_argument("--spike-at", type=float, default=20.0, help="seconds before the spike")
    parser.add_argument("--spike-seconds", type=float, default=20.0, help="how long it lasts")
    parser.add_argument("--spike-factor", type=float, default=10.0, help="rate multiplier")
    parser.add_argument(
        "--record-dir", default="", include_in_web_ui=False, help="write exact times here"
    )
    parser.add_argument(
        "--run-id", default="", include_in_web_ui=False, help="address prefix (default random)"
    )


class Run:
    """What one test run shares: the arrival grid, the recorder, the mail store."""

    grid: Grid | None = None
    recorder: Recorder = Recorder(None)
    mail: MailStore | None = None
    accounts: list[dict] = []
    returning_serial = itertools.count()
    record_dir: Path | None = None
    run_id: str = ""
    serial = itertools.count()
    host_turn = itertools.count()


@events.init.add_listener
def _select_by_tag(environment, **_kw) -> None:
    """`--tags mixed` alone selects the Mixed class (Locust would keep the others, taskless)."""
    options = environment.parsed_options
    tags = set(getattr(options, "tags", None) or [])
    if tags and not getattr(options, "user_classes", None):
        chosen = [c for c in environment.user_classes if c.scenario in tags]
        if chosen:
            environment.user_classes = chosen


@events.test_start.add_listener
def _start(environment, **_kw) -> None:
    options = environment.parsed_options
    users = max(1, int(options.num_users or 1))
    rate = options.arrival_rate or float(users)
    if any(c.scenario == "spike" for c in environment.user_classes):
        schedule = Schedule.spike(
            rate, at=options.spike_at, seconds=options.spike_seconds, factor=options.spike_factor
        )
    else:
        schedule = Schedule.steady(rate)
    Run.grid = Grid(schedule=schedule, users=users, arrivals_process=options.arrivals)
    Run.run_id = options.run_id or uuid.uuid4().hex[:8]
    Run.record_dir = Path(options.record_dir) if options.record_dir else None
    Run.recorder.close()
    Run.recorder = Recorder(Run.record_dir / "requests.csv" if Run.record_dir else None)
    Run.mail = MailStore(Path(options.mail_store)) if options.mail_store else None
    Run.accounts = json.loads(Path(options.accounts).read_text()) if options.accounts else []
    logger.info(
        "grid: %s arrivals, %.2f/s over %d users (mean period %.2f s)",
        options.arrivals,
        rate,
        users,
        users / rate,
    )


@events.test_stop.add_listener
def _stop(environment, **_kw) -> None:
    Run.recorder.close()
    pacing = Run.grid.summary() if Run.grid else {}
    if Run.record_dir is not None:
        (Run.record_dir / "pacing.json").write_text(json.dumps(pacing, indent=2))
        # Locust's --csv writer runs once a second and does not write again at
        # exit, so its file can miss the last second; this one is complete.
        with open(Run.record_dir / "locust_stats_final.csv", "w", newline="") as fh:
            StatsCSV(environment, PERCENTILES_TO_REPORT).requests_csv(csv.writer(fh))
    logger.info("pacing: %s\n%s", pacing, Run.recorder.table())


@events.request.add_listener
def _record(request_type, name, response_time, response, context, exception, **kw) -> None:
    status = int(getattr(response, "status_code", 0) or 0)
    kind = (context or {}).get("kind", "")
    ok = exception is None
    Run.recorder.add(
        Row(
            start=kw.get("start_time") or time.time() - response_time / 1000,
            type=request_type,
            name=name,
            kind=kind,
            status=status,
            ms=response_time,
            ok=ok,
            email=(context or {}).get("email", ""),
            emails=EMAILS_CAUSED.get((kind, status), 0) if ok else 0,
            error="" if ok else str(exception)[:200].replace("\n", " "),
        )
    )


def new_address() -> str:
    return f"load-{Run.run_id}-{next(Run.serial)}@example.com"


def strong_password() -> str:
    return "".join(random.choices(string.ascii_letters + string.digits, k=20))


@dataclass
class Address:
    """An address this user signed up, and when its last code was requested."""

    email: str
    code_sent: float  # monotonic, when the request that issued the code started
    code_done: float  # monotonic, when that request's answer arrived
    codes: int = 1
    wrong: int = 0
    asked: float = float("-inf")  # monotonic, when a resend of it was last answered 202


class PacedUser(FastHttpUser):
    """Fires on its slot of the shared grid; helpers post with an expected status."""

    abstract = True
    scenario = ""
    network_timeout = 30.0
    connection_timeout = 10.0

    def __init__(self, environment) -> None:
        """With --web-hosts, user k talks to node k mod n (a round-robin balancer)."""
        hosts = [h for h in getattr(environment.parsed_options, "web_hosts", "").split(",") if h]
        if hosts:
            self.host = hosts[next(Run.host_turn) % len(hosts)]
        super().__init__(environment)

    def on_start(self) -> None:
        if Run.grid is None:
            raise StopUser
        self.pacer: Pacer = Run.grid.join()
        gevent.sleep(self.pacer.delay())

    def wait_time(self) -> float:
        return self.pacer.delay()

    def arrive(self) -> None:
        self.pacer.started()

    def expect(self, path: str, body, status: int, *, kind: str, email: str = "", name: str = ""):
        """POST and count it a success exactly when the answer is `status`."""
        extra = {"data": body, "headers": {"Content-Type": "application/json"}}
        if not isinstance(body, str):
            extra = {"json": body}
        with self.client.post(
            path,
            name=name or path,
            catch_response=True,
            context={"kind": kind, "email": email},
            **extra,
        ) as resp:
            if resp.status_code == status:
                resp.success()
            else:
                resp.failure(
                    f"{kind}: expected {status}, got {resp.status_code}: {resp.text[:150]}"
                )
            return resp

    def signup_new(self) -> tuple[str, float, float]:
        """A new address signed up; its verification_token kept in TOKENS for verify."""
        email = new_address()
        sent = time.monotonic()
        body = {"email": email, "password": strong_password(), "full_name": "Load Test"}
        resp = self.expect(SIGNUP, body, 202, kind="signup_new", email=email)
        if resp.status_code != 202:
            return "", sent, time.monotonic()
        TOKENS[email] = resp.json().get("verification_token", "")
        if len(TOKENS) > 10_000:  # bounded memory: drop the oldest
            del TOKENS[next(iter(TOKENS))]
        return email, sent, time.monotonic()


class Signup(PacedUser):
    scenario = "signup"

    @tag("signup")
    @task
    def signup(self) -> None:
        self.arrive()
        self.signup_new()


class Spike(PacedUser):
    """Signups whose arrival rate is multiplied during --spike-seconds (see _start)."""

    scenario = "spike"

    @tag("spike")
    @task
    def spiked_signup(self) -> None:
        self.arrive()
        self.signup_new()


class SignupVerify(PacedUser):
    """The whole journey: signup, the email arrives, the code verifies."""

    scenario = "signup_verify"

    @tag("signup_verify")
    @task
    def signup_and_verify(self) -> None:
        self.arrive()
        email, _sent, done = self.signup_new()
        if not email:
            return
        mail = self.wait_for_code(email, since=time.time() - (time.monotonic() - done))
        if mail is not None:
            body = {"email": email, "code": mail, "verification_token": TOKENS.pop(email, "")}
            self.expect(VERIFY, body, 200, kind="verify", email=email)

    def wait_for_code(self, email: str, *, since: float) -> str | None:
        """Poll the sink's store (bounded); report the delivery delay as a MAIL request."""
        store = Run.mail
        deadline = time.monotonic() + MAIL_TIMEOUT
        if store is None:
            self.fire_mail(email, 0.0, RuntimeError("no --mail-store: cannot read codes"))
            return None
        while time.monotonic() < deadline:
            store.refresh()
            mails = store.verification_mails(email)
            if mails and mails[-1].code:
                delay_ms = max(0.0, (mails[-1].received_at - since) * 1000)
                self.fire_mail(email, delay_ms, None)
                return mails[-1].code
            gevent.sleep(0.05)
        error = TimeoutError(f"no verification email within {MAIL_TIMEOUT:.0f} s")
        self.fire_mail(email, MAIL_TIMEOUT * 1000, error)
        return None

    def fire_mail(self, email: str, delay_ms: float, error: Exception | None) -> None:
        self.environment.events.request.fire(
            request_type="MAIL",
            name="verification email delay",
            response_time=delay_ms,
            response_length=0,
            response=None,
            context={"kind": "mail", "email": email},
            exception=error,
        )


class Mixed(PacedUser):
    """Mostly new signups; repeats, resends, wrong codes and bad bodies answered as documented.

    Repeats and resends target this user's own addresses, chosen by age so
    that the answer is known: inside the cooldown of its last resend a resend
    is 429, inside the cooldown of its last code a repeat sends nothing; well
    past both a resend is 202 and sends a code.
    """

    scenario = "mixed"
    weight = 4  # beside Returning (weight 1) when the runner mixes them

    def on_start(self) -> None:
        self.addresses: list[Address] = []
        super().on_start()

    def remember(self, email: str, sent: float, done: float) -> None:
        if email:
            self.addresses.append(Address(email=email, code_sent=sent, code_done=done))
            del self.addresses[:-200]  # bounded memory per user

    def in_cooldown(self) -> list[Address]:
        now = time.monotonic()
        return [a for a in self.addresses if now - a.code_sent < IN_COOLDOWN]

    @tag("mixed", "new")
    @task(70)
    def new_signup(self) -> None:
        self.arrive()
        self.remember(*self.signup_new())

    @tag("mixed", "taken")
    @task(8)
    def taken_signup(self) -> None:
        """A repeat inside the cooldown: same 202, no second email."""
        self.arrive()
        recent = self.in_cooldown()
        if not recent:
            self.remember(*self.signup_new())
            return
        address = random.choice(recent)
        body = {"email": address.email, "password": strong_password()}
        self.expect(SIGNUP, body, 202, kind="signup_taken", email=address.email)

    @tag("mixed", "resend")
    @task(8)
    def resend(self) -> None:
        self.arrive()
        now = time.monotonic()
        recent = self.in_cooldown()
        # Resend's 429 counts resends only (the signup does not show in it).
        recent = [a for a in recent if now - a.asked < IN_COOLDOWN]
        due = [a for a in self.addresses if now - a.code_done > PAST_COOLDOWN]
        due = [a for a in due if a.codes < CODES_PER_HOUR and now - a.asked > PAST_COOLDOWN]
        if due and random.random() < 0.5:
            address = random.choice(due)
            sent = time.monotonic()
            resp = self.expect(
                RESEND, {"email": address.email}, 202, kind="resend", email=address.email
            )
            if resp.status_code == 202:
                address.code_sent, address.code_done = sent, time.monotonic()
                address.asked = sent
                address.codes += 1
        elif recent:
            address = random.choice(recent)
            self.expect(RESEND, {"email": address.email}, 429, kind="resend", email=address.email)
        else:  # an address nobody signed up with: 202, and no email
            email = new_address()
            self.expect(RESEND, {"email": email}, 202, kind="resend_unknown", email=email)

    @tag("mixed", "wrong_code")
    @task(8)
    def wrong_code(self) -> None:
        """A mistyped code (a letter O for a zero can never match): 400, under the 5-try lock."""
        self.arrive()
        candidates = [a for a in self.addresses if a.wrong < 3]
        email = random.choice(candidates).email if candidates else new_address()
        code = f"{random.randrange(100000):05d}O"
        token = TOKENS.get(email) or "not-a-signup-token"
        self.expect(
            VERIFY,
            {"email": email, "code": code, "verification_token": token},
            400,
            kind="wrong_code",
            email=email,
            name=f"{VERIFY} [wrong code]",
        )
        for address in candidates:
            if address.email == email:
                address.wrong += 1

    @tag("mixed", "malformed")
    @task(6)
    def malformed(self) -> None:
        self.arrive()
        body, status = random.choice(
            [
                ('{"email": "x@example.com", "password": ', 400),  # not JSON
                ({"email": new_address()}, 422),  # no password
                ({"email": "not-an-address", "password": strong_password()}, 422),
                ({"email": new_address(), "password": "12345"}, 422),  # too weak
            ]
        )
        self.expect(SIGNUP, body, status, kind="malformed", name=f"{SIGNUP} [malformed]")


LOGIN = "/api/v1/auth/login"
LOGIN_CODE = "/api/v1/auth/code"
LOGIN_CODE_VERIFY = "/api/v1/auth/code/verify"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/me"
WALLET = "/api/v1/me/wallet"
NOTIFICATIONS = "/api/v1/me/notifications"
SESSIONS = "/api/v1/me/sessions"
PASSWORD = "/api/v1/me/password"
PASSWORD_CHANGE_SHARE = 0.1  # of returning journeys
CODE_LOGIN_SHARE = 0.25  # of logins, when the address may ask for a code


@dataclass
class Account:
    """A seeded account, and when a login code was last asked for it."""

    email: str
    password: str
    code_asked: float = -1e9  # monotonic
    codes: int = 0


class Returning(PacedUser):
    """Existing accounts come back: one request per arrival, in journey order.

    log in (by password; a quarter by a code read from the sink's store when
    the address is past its cooldown) -> me -> wallet -> notifications ->
    mark one read -> sessions -> (one in ten: change the password) -> log
    out, then the next account. Needs --accounts (the
    runner seeds them); the code logins need --mail-store.
    """

    scenario = "returning"
    weight = 1

    def on_start(self) -> None:
        if not Run.accounts:
            logger.warning("Returning: no --accounts, nothing to do")
            raise StopUser
        # Each user takes every n-th account, so no two users share one.
        first = next(Run.returning_serial)
        self.accounts = [Account(**a) for a in Run.accounts[first :: max(1, Run.grid.users)]] or [
            Account(**Run.accounts[first % len(Run.accounts)])
        ]
        self.turn = 0
        self.steps = iter(())
        super().on_start()

    @tag("returning")
    @task
    def step(self) -> None:
        self.arrive()
        for _ in range(2):  # a finished journey starts the next one in this arrival
            try:
                next(self.steps)
                return
            except StopIteration:
                self.steps = self.journey()

    def journey(self):
        account = self.accounts[self.turn % len(self.accounts)]
        self.turn += 1
        token = yield from self.log_in(account)
        if not token:
            return
        auth = {"Authorization": f"Bearer {token}"}
        self.authed("GET", ME, auth, account)
        yield
        self.authed("GET", WALLET, auth, account)
        yield
        page = self.authed("GET", f"{NOTIFICATIONS}?limit=20", auth, account, name=NOTIFICATIONS)
        unread = [i["id"] for i in (page or {}).get("items", []) if not i["read"]]
        yield
        if unread:
            path = f"{NOTIFICATIONS}/{random.choice(unread)}/read"
            self.authed("POST", path, auth, account, name=f"{NOTIFICATIONS}/{{id}}/read")
        else:
            self.authed("POST", f"{NOTIFICATIONS}/read-all", auth, account)
        yield
        self.authed("GET", SESSIONS, auth, account)
        yield
        if random.random() < PASSWORD_CHANGE_SHARE:  # two Argon2id: the check and the new hash
            new = f"{account.password[:20]} changed {random.randrange(10**6)}"
            body = {"current_password": account.password, "new_password": new}
            self.authed("POST", PASSWORD, auth, account, body=body)
            account.password = new
            yield
        self.authed("POST", LOGOUT, auth, account)
        yield  # the next arrival starts the next journey

    def log_in(self, account: Account):
        now = time.monotonic()
        may_ask = now - account.code_asked > PAST_COOLDOWN and account.codes < CODES_PER_HOUR
        if Run.mail is not None and may_ask and random.random() < CODE_LOGIN_SHARE:
            account.code_asked, account.codes = now, account.codes + 1
            since = time.time()
            body = {"email": account.email}
            resp = self.expect(LOGIN_CODE, body, 202, kind="login_code", email=account.email)
            yield
            if resp.status_code != 202:
                return None
            code = self.wait_for_login_code(account.email, since=since)
            if code is None:
                return None
            body = {"email": account.email, "code": code}
            resp = self.expect(LOGIN_CODE_VERIFY, body, 200, kind="code_login", email=account.email)
        else:
            body = {"email": account.email, "password": account.password}
            resp = self.expect(LOGIN, body, 200, kind="login", email=account.email)
        yield
        return resp.json()["access_token"] if resp.status_code == 200 else None

    def authed(
        self, method: str, path: str, auth: dict, account: Account, name: str = "", body=None
    ):
        """One token-authenticated request: GET expects 200 (its JSON is returned),
        POST expects 204."""
        expected = 200 if method == "GET" else 204
        with self.client.request(
            method,
            path,
            headers=auth,
            json=body,
            name=name or path,
            catch_response=True,
            context={"kind": "returning", "email": account.email},
        ) as resp:
            if resp.status_code != expected:
                resp.failure(
                    f"{method} {path}: expected {expected}, got {resp.status_code}:"
                    f" {resp.text[:150]}"
                )
                return None
            resp.success()
            return resp.json() if expected == 200 else None

    def wait_for_login_code(self, email: str, *, since: float) -> str | None:
        """Poll the sink's store (bounded) for a login code mailed after `since`."""
        deadline = time.monotonic() + MAIL_TIMEOUT
        while time.monotonic() < deadline:
            Run.mail.refresh()
            mails = [m for m in Run.mail.login_code_mails(email) if m.received_at >= since - 1]
            if mails and mails[-1].code:
                self.environment.events.request.fire(
                    request_type="MAIL",
                    name="login code email delay",
                    response_time=max(0.0, (mails[-1].received_at - since) * 1000),
                    response_length=0,
                    response=None,
                    context={"kind": "mail", "email": email},
                    exception=None,
                )
                return mails[-1].code
            gevent.sleep(0.05)
        self.environment.events.request.fire(
            request_type="MAIL",
            name="login code email delay",
            response_time=MAIL_TIMEOUT * 1000,
            response_length=0,
            response=None,
            context={"kind": "mail", "email": email},
            exception=TimeoutError(f"no login code email within {MAIL_TIMEOUT:.0f} s"),
        )
        return None
