"""Exact per-request times, and which outcomes must produce an email.

Locust's own percentiles are bucketed (10 ms steps above 100 ms), too coarse
for a 100 ms gate, so every request is also written here with its exact
time. The runner reads the file back (Locust and the runner are separate
processes with separate virtualenvs), so this module imports neither Locust
nor Django.
"""

import csv
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from loadtests.stats import p50_p95_p99

COLUMNS = ["start", "type", "name", "kind", "status", "ms", "ok", "email", "emails", "error"]

# (kind of request, status) -> verification emails it must cause. A new
# address always gets its first code; a resend answered 202 queues one. A
# repeat signup of a taken address is sent only inside the 60 s cooldown, so
# it is silently limited and sends nothing (its 202 looks the same outside).
EMAILS_CAUSED = {("signup_new", 202): 1, ("resend", 202): 1}


@dataclass
class Row:
    start: float
    type: str
    name: str
    kind: str
    status: int
    ms: float
    ok: bool
    email: str
    emails: int
    error: str


class Recorder:
    """Appends one CSV line per request; keeps times per name for a printout."""

    def __init__(self, path: Path | None) -> None:
        self.times: dict[str, list[float]] = defaultdict(list)
        self._fh = None
        self._writer = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115 (closed in close())
            self._writer = csv.writer(self._fh)
            self._writer.writerow(COLUMNS)

    def add(self, row: Row) -> None:
        self.times[f"{row.type} {row.name}"].append(row.ms)
        if self._writer is not None:
            self._writer.writerow(
                [
                    f"{row.start:.6f}",
                    row.type,
                    row.name,
                    row.kind,
                    row.status,
                    f"{row.ms:.3f}",
                    int(row.ok),
                    row.email,
                    row.emails,
                    row.error,
                ]
            )

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
            self._writer = None

    def table(self) -> str:
        return exact_table({name: sorted(ms) for name, ms in self.times.items()})


def read_rows(path: Path) -> list[Row]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [
            Row(
                start=float(r["start"]),
                type=r["type"],
                name=r["name"],
                kind=r["kind"],
                status=int(r["status"]),
                ms=float(r["ms"]),
                ok=r["ok"] == "1",
                email=r["email"],
                emails=int(r["emails"]),
                error=r["error"],
            )
            for r in csv.DictReader(fh)
        ]


def exact_table(times: dict[str, list[float]]) -> str:
    """count, p50/p95/p99/max per name, from sorted exact times."""
    lines = [f"{'exact (listener)':<48}{'count':>7}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}"]
    for name, ms in sorted(times.items()):
        cells = [*p50_p95_p99(ms), ms[-1] if ms else 0.0]
        lines.append(f"{name:<48}{len(ms):>7}" + "".join(f"{v:>9.1f}" for v in cells))
    return "\n".join(lines)


def times_by_name(rows: Iterable[Row]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        out[row.name].append(row.ms)
    return {name: sorted(ms) for name, ms in out.items()}
