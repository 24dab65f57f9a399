"""Helpers of the "no two-factor secret at rest" tests (signup/tests/test_mfa_secrets_at_rest.py
and benchmarks/test_silk_mfa.py): drive every two-factor path once through the API,
collecting every secret it hands out, then grep whole stores for them.

The secrets: the TOTP secret (base32 in any case, its raw bytes as hex and
base64), every recovery code (with and without its dashes, any case), every
mfa_token and every access token. A store is a dict of place -> text; the
grep reports the place and the form found, never the value itself.
"""

import base64
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from io import StringIO

import dramatiq
import pyotp
import pytest
from django.conf import settings
from django.db import connection, connections
from django.utils import timezone

from signup.models import User

PASSWORD = "correct horse battery staple"
LOGIN = "/api/v1/auth/login"
SECOND_STEP = "/api/v1/auth/mfa"
ENROL = "/api/v1/me/mfa/totp"
CONFIRM = "/api/v1/me/mfa/totp/confirm"
RENEW = "/api/v1/me/mfa/recovery-codes"
STATUS = "/api/v1/me/mfa"


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@dataclass
class Seen:
    """Every secret the API handed out while the paths were driven."""

    secret: str = ""
    recovery_codes: list[str] = field(default_factory=list)
    mfa_tokens: list[str] = field(default_factory=list)
    access_tokens: list[str] = field(default_factory=list)

    def needles(self) -> dict[str, tuple[str, bool]]:
        """label -> (text, case-insensitive): each form a leak could take."""
        raw = base64.b32decode(self.secret.upper())
        found: dict[str, tuple[str, bool]] = {
            "totp secret (base32)": (self.secret, True),
            "totp secret bytes (hex)": (raw.hex(), True),
        }
        for name, encode in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
            text = encode(raw).decode()
            found[f"totp secret bytes ({name})"] = (text, False)
            found[f"totp secret bytes ({name}, unpadded)"] = (text.rstrip("="), False)
        for n, code in enumerate(self.recovery_codes):
            found[f"recovery code #{n}"] = (code, True)
            found[f"recovery code #{n} (no dashes)"] = (code.replace("-", ""), True)
        for n, token in enumerate(self.mfa_tokens):
            found[f"mfa_token #{n}"] = (token, False)
        for n, token in enumerate(self.access_tokens):
            found[f"access token #{n}"] = (token, False)
        return found


def leaks(needles: dict[str, tuple[str, bool]], stores: dict[str, str]) -> list[str]:
    """ "<needle label> in <place>" for every needle found in a store."""
    found = []
    for place, text in stores.items():
        folded = text.lower()
        for label, (needle, any_case) in needles.items():
            if (needle.lower() in folded) if any_case else (needle in text):
                found.append(f"{label} in {place}")
    return found


# --- driving the paths ------------------------------------------------------------


def totp_code(secret: str, *, at: float | None = None) -> str:
    return pyotp.TOTP(secret).at(time.time() if at is None else at)


def login_step_one(api, seen: Seen, email: str) -> str:
    """A right password on an account with two-factor login on: the mfa_token."""
    answer = api.post_json(LOGIN, {"email": email, "password": PASSWORD})
    assert answer.status_code == 200, answer.content
    assert answer.json()["mfa_required"] is True, answer.json()
    seen.mfa_tokens.append(answer.json()["mfa_token"])
    return seen.mfa_tokens[-1]


def second_step(api, seen: Seen, body: dict, status: int = 200):
    answer = api.post_json(SECOND_STEP, body)
    assert answer.status_code == status, answer.content
    if status == 200:
        seen.access_tokens.append(answer.json()["access_token"])
    return answer


def enrol_and_confirm(api, seen: Seen, token: str) -> str:
    """Enrolment and confirmation; the confirming code (its step is then used)."""
    enrolment = api.post_json(ENROL, {"password": PASSWORD}, **bearer(token))
    assert enrolment.status_code == 200, enrolment.content
    seen.secret = enrolment.json()["secret"]
    code = totp_code(seen.secret)
    confirmed = api.post_json(CONFIRM, {"code": code}, **bearer(token))
    assert confirmed.status_code == 200, confirmed.content
    seen.recovery_codes += confirmed.json()["recovery_codes"]
    return code


def drive_two_factor(api, email: str = "ada@example.com") -> Seen:
    """Enrol, confirm, log in with a TOTP code (after a refused replay), with a
    recovery code (after a refused wrong one), renew the recovery codes with
    another recovery code as mfa_code, read the status: every secret seen."""
    seen = Seen()
    User.objects.create_user(email, PASSWORD, email_verified_at=timezone.now())
    first = api.post_json(LOGIN, {"email": email, "password": PASSWORD})
    assert first.status_code == 200, first.content
    seen.access_tokens.append(first.json()["access_token"])
    used = enrol_and_confirm(api, seen, seen.access_tokens[0])

    mfa_token = login_step_one(api, seen, email)
    second_step(api, seen, {"mfa_token": mfa_token, "code": used}, status=400)  # a replay
    second_step(
        api, seen, {"mfa_token": mfa_token, "code": totp_code(seen.secret, at=time.time() + 30)}
    )

    mfa_token = login_step_one(api, seen, email)
    second_step(api, seen, {"mfa_token": mfa_token, "recovery_code": "zzzz-zzzz-zzzz"}, status=400)
    second_step(api, seen, {"mfa_token": mfa_token, "recovery_code": seen.recovery_codes[0]})

    token = seen.access_tokens[-1]
    body = {"password": PASSWORD, "mfa_code": seen.recovery_codes[1].upper()}
    renewed = api.post_json(RENEW, body, **bearer(token))
    assert renewed.status_code == 200, renewed.content
    seen.recovery_codes += renewed.json()["recovery_codes"]
    status = api.get(STATUS, **bearer(token))
    assert status.json() == {"totp": True, "recovery_codes_left": 10}, status.content
    return seen


# --- the stores ---------------------------------------------------------------------


def database_dump(prefix: str = "") -> dict[str, str]:
    """Every row of every table (whose name starts with prefix), cast to text."""
    dump = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            if not table.startswith(prefix):
                continue
            quoted = connection.ops.quote_name(table)  # a name the database listed
            cursor.execute(f"SELECT t::text FROM {quoted} AS t")  # noqa: S608
            dump[f"table {table}"] = "\n".join(row for (row,) in cursor.fetchall())
    return dump


def redis_dump() -> dict[str, str]:
    """Every key of the tests' Redis database (broker queues and messages,
    cache, throttles), each value as text (bytes as latin-1: pickles too)."""
    client = dramatiq.get_broker().client
    dump = {}
    for key in client.keys("*"):
        kind = client.type(key).decode()
        if kind == "string":
            values = [client.get(key)]
        elif kind == "hash":
            values = [v for pair in client.hgetall(key).items() for v in pair]
        elif kind == "list":
            values = client.lrange(key, 0, -1)
        elif kind == "set":
            values = list(client.smembers(key))
        elif kind == "zset":
            values = client.zrange(key, 0, -1)
        else:
            values = [f"<{kind}: not read>".encode()]
        dump[f"redis {key.decode()}"] = "\n".join(v.decode("latin-1") for v in values if v)
    return dump


def queued_messages(queue: str) -> list[dict]:
    """The Dramatiq messages waiting in a queue of the real broker."""
    broker = dramatiq.get_broker()
    raw = broker.client.hvals(f"{broker.namespace}:{queue}.msgs")
    return [json.loads(message) for message in raw]


@dataclass
class Logs:
    caplog: pytest.LogCaptureFixture
    streams: dict[str, StringIO]

    def stores(self) -> dict[str, str]:
        """Each record as the project's formatters write it, with its raw
        parts (message, args, extras, traceback), and each configured
        handler's own output."""
        from core.logs import JsonFormatter

        text = logging.Formatter(
            settings.LOGGING["formatters"]["text"]["format"], defaults={"request_id": "-"}
        )
        as_json, lines = JsonFormatter(), []
        for record in self.caplog.records:
            lines += [text.format(record), as_json.format(record), repr(vars(record))]
        found = {"log records": "\n".join(lines)}
        found |= {f"log handler {name}": s.getvalue() for name, s in self.streams.items()}
        return found


@contextmanager
def logs_at_debug(caplog) -> Iterator[Logs]:
    """Every logger at DEBUG into caplog (non-propagating ones too), SQL
    logged (django.db.backends), and the handlers of settings.LOGGING
    writing into buffers instead of the console."""
    loggers = [logging.root] + [
        log for log in logging.root.manager.loggerDict.values() if isinstance(log, logging.Logger)
    ]
    levels = {log: log.level for log in loggers}
    islands = [log for log in loggers if not log.propagate]
    configured = {
        handler: handler.name
        for log in loggers
        for handler in log.handlers
        if handler.name in settings.LOGGING["handlers"]
        and isinstance(handler, logging.StreamHandler)
    }
    streams = {name: StringIO() for name in configured.values()}
    old_streams = {h: h.setStream(streams[name]) for h, name in configured.items()}
    debug_cursors = {alias: connections[alias].force_debug_cursor for alias in connections}
    caplog.set_level(logging.DEBUG)
    try:
        for log in loggers:
            log.setLevel(logging.DEBUG)
        for log in islands:
            log.addHandler(caplog.handler)
        for alias in connections:
            connections[alias].force_debug_cursor = True
        yield Logs(caplog, streams)
    finally:
        for alias, value in debug_cursors.items():
            connections[alias].force_debug_cursor = value
        for log in islands:
            log.removeHandler(caplog.handler)
        for log, level in levels.items():
            log.setLevel(level)
        for handler, stream in old_streams.items():
            handler.setStream(stream)
