"""Turn a run's files into figures and checks: Locust CSV, exact times, access log, mail.

Three views of latency side by side: Locust's own (bucketed) percentiles,
the exact ones from the request listener, and the server's own time from
gunicorn's access log. Client minus server is time spent queueing for a
worker or inside Locust, not in Django.
"""

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from loadtests.mailstore import MailStore
from loadtests.record import Row, times_by_name
from loadtests.stats import p50_p95_p99, percentile

SIGNUP = "/api/v1/signup"
VERIFY = "/api/v1/signup/verify"
LOGIN = "/api/v1/auth/login"


@dataclass
class Check:
    name: str
    ok: bool  # what was measured is within the bound
    detail: str
    gated: bool = True  # False: reported, not gated (a failed one does not fail the run)

    @property
    def label(self) -> str:
        """PASS or FAIL; for a check reported, not gated: REPORTED."""
        if not self.gated:
            return "REPORTED"
        return "PASS" if self.ok else "FAIL"

    @property
    def line(self) -> str:
        """The summary's line for it; one not gated says whether it would have passed."""
        if self.gated:
            return f"{self.label}  {self.name}: {self.detail}"
        verdict = "within the bound" if self.ok else "would FAIL"
        return f"{self.label}  {self.name}: {self.detail} ({verdict}; reported, not gated)"


@dataclass
class LocustRow:
    type: str
    name: str
    count: int
    failures: int
    rps: float
    p50: float
    p95: float
    p99: float


def locust_rows(stats_csv: Path) -> list[LocustRow]:
    """Locust's own per-name figures (percentiles bucketed: 10 ms steps above 100 ms)."""
    if not stats_csv.exists():
        return []

    def num(value: str) -> float:
        return float(value) if value not in ("", "N/A") else 0.0

    with open(stats_csv, newline="", encoding="utf-8") as fh:
        return [
            LocustRow(
                type=r["Type"],
                name=r["Name"],
                count=int(r["Request Count"]),
                failures=int(r["Failure Count"]),
                rps=num(r["Requests/s"]),
                p50=num(r["50%"]),
                p95=num(r["95%"]),
                p99=num(r["99%"]),
            )
            for r in csv.DictReader(fh)
        ]


def server_times(access_log: Path, offset: int = 0) -> dict[str, list[float]]:
    """Server-side ms per 'METHOD path status' from lines '%(m)s %(U)s %(s)s %(L)s'.

    offset: the log's size when Locust started, so the warm-up is left out.
    """
    out: dict[str, list[float]] = {}
    if not access_log.exists():
        return out
    with open(access_log, "rb") as fh:
        fh.seek(offset)
        text = fh.read().decode("utf-8", errors="replace")
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 4:
            continue
        method, path, status, seconds = parts
        try:
            out.setdefault(f"{method} {path} {status}", []).append(float(seconds) * 1000)
        except ValueError:
            continue
    return {key: sorted(ms) for key, ms in out.items()}


@dataclass
class MailFigures:
    expected: int = 0
    received: int = 0
    missing: list[str] = field(default_factory=list)  # fewer verification mails than caused
    extra: list[str] = field(default_factory=list)  # more than caused, or never caused
    notices: int = 0
    last_received_at: float = 0.0
    # per new signup answered 202: ms from the answer to its first code at the
    # sink (the sink's clock and Locust's are this machine's; floored at 0,
    # since the worker may deliver before Locust has read the answer)
    inbox_ms: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.extra


def mail_figures(rows: list[Row], store: MailStore, also: list[str] = ()) -> MailFigures:
    """Per address: verification mails caused (202 new signup, 202 resend) vs received.

    `also`: addresses signed up outside Locust (the warm-up), one mail each.
    """
    store.refresh()
    expected: Counter[str] = Counter(a.lower() for a in also)
    for row in rows:
        if row.emails:
            expected[row.email.lower()] += row.emails
    received: Counter[str] = Counter()
    figures = MailFigures()
    for address, mails in store.by_address.items():
        for mail in mails:
            figures.last_received_at = max(figures.last_received_at, mail.received_at)
            if mail.is_verification:
                received[address] += 1
            elif not mail.is_login_code:  # those are checked on their own (loadtests.run)
                figures.notices += 1
    figures.expected = sum(expected.values())
    figures.received = sum(received.values())
    figures.inbox_ms = sorted(time_to_inbox(rows, store))
    figures.missing = sorted(a for a in expected if received[a] < expected[a])
    figures.extra = sorted(a for a in received if received[a] > expected[a])
    return figures


def time_to_inbox(rows: list[Row], store: MailStore) -> list[float]:
    """For each new signup answered 202 and mailed: ms from its answer to its code."""
    out = []
    for row in rows:
        if row.kind != "signup_new" or row.status != 202:
            continue
        mails = store.verification_mails(row.email)
        if mails:
            answered = row.start + row.ms / 1000
            out.append(max(0.0, (min(m.received_at for m in mails) - answered) * 1000))
    return out


def fmt_ms(values: list[float], *, width: int = 8, sep: str = "") -> str:
    """p50, p95, p99 of values (loadtests.stats) to 0.1 ms, each `width` wide, joined by sep.

    "-" for each figure when there are no values. Tables: the default;
    the runner's lines: width=0, sep="/" ("26.4/52.6/77.9").
    """
    cells = [f"{v:.1f}" for v in p50_p95_p99(values)] if values else ["-"] * 3
    return sep.join(f"{cell:>{width}}" for cell in cells)


def latency_table(locust: list[LocustRow], rows: list[Row], duration: float) -> list[str]:
    """One line per endpoint: Locust's bucketed and the listener's exact percentiles."""
    exact = times_by_name(r for r in rows if r.type != "MAIL")
    mail = times_by_name(r for r in rows if r.type == "MAIL")
    lines = [
        f"{'request':<40}{'count':>7}{'fail':>6}{'rps':>7}  locust p50/p95/p99 ms"
        "  | exact p50/p95/p99 ms",
    ]
    for row in locust:
        if row.name == "Aggregated":
            continue
        times = (mail if row.type == "MAIL" else exact).get(row.name, [])
        lines.append(
            f"{row.type + ' ' + row.name:<40}{row.count:>7}{row.failures:>6}{row.rps:>7.1f}"
            f"  {row.p50:>6.0f}{row.p95:>6.0f}{row.p99:>6.0f}       |{fmt_ms(times)}"
        )
    http = [r for r in locust if r.type != "MAIL" and r.name != "Aggregated"]
    total = sum(r.count for r in http)
    fails = sum(r.failures for r in http)
    rps = total / duration if duration else 0.0
    lines.append(f"{'all HTTP requests':<40}{total:>7}{fails:>6}{rps:>7.1f}")
    return lines


def phase_table(rows: list[Row], *, spike_at: float, seconds: float) -> list[str]:
    """Exact signup percentiles before, during and after a spike (from request start times)."""
    signups = [r for r in rows if r.type == "POST" and r.name == SIGNUP]
    if not signups:
        return []
    epoch = min(r.start for r in signups)
    bounds = {
        "before": (0, spike_at),
        "spike": (spike_at, spike_at + seconds),
        "recovery (10 s)": (spike_at + seconds, spike_at + seconds + 10),
        "after": (spike_at + seconds + 10, float("inf")),
    }
    lines = [f"{'spike phase':<20}{'count':>7}{'rps':>7}{'p50':>8}{'p95':>8}{'p99':>8}"]
    for phase, (lo, hi) in bounds.items():
        ms = sorted(r.ms for r in signups if lo <= r.start - epoch < hi)
        span = min(hi, max(r.start - epoch for r in signups) + 1e-9) - lo
        rps = len(ms) / span if span > 0 else 0.0
        lines.append(f"{phase:<20}{len(ms):>7}{rps:>7.1f}{fmt_ms(ms)}")
    return lines


def after_spike_p95(rows: list[Row], *, spike_at: float, seconds: float) -> float | None:
    """Exact p95 of signups started from 10 s after the spike ended; None if none."""
    signups = [r for r in rows if r.type == "POST" and r.name == SIGNUP]
    if not signups:
        return None
    epoch = min(r.start for r in signups)
    ms = sorted(r.ms for r in signups if r.start - epoch >= spike_at + seconds + 10)
    return percentile(ms, 95) if ms else None
