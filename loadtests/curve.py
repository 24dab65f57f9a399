"""Capacity curve: the same scenario at rising arrival rates, one table.

    python -m loadtests.curve --scenario mixed --rates 5 10 20 40 80 --duration 60

Each point is a full `loadtests.run` (fresh database and processes), so
points do not inherit each other's tables or queues. The table shows where
signup p95 crosses the bound and which process had the CPU (cores used).
"""

import argparse
import json
import sys
from pathlib import Path

from loadtests import run
from loadtests.stack import ROOT

COLUMNS = (
    f"{'rate/s':>7}{'users':>6}{'rps':>7}{'signup/s':>9}{'missed':>7}"
    f"{'p50':>7}{'p95':>6}{'p99':>6}{'exact95':>8}{'srv95':>7}"
    f"{'web':>6}{'wrkr':>6}{'pg':>6}{'locst':>6}{'other':>6}{'mach':>6}  result"
)


def row(figures: dict) -> str:
    signup = figures.get("signup_locust") or {}
    cpu = figures.get("cpu") or {}
    pacing = figures.get("pacing") or {}
    return (
        f"{figures['rate']:>7g}{figures['users']:>6}{figures['rps']:>7.1f}"
        f"{signup.get('rps', 0):>9.1f}{pacing.get('missed_slots', 0):>7}"
        f"{signup.get('p50', 0):>7.0f}{signup.get('p95', 0):>6.0f}{signup.get('p99', 0):>6.0f}"
        f"{figures['signup_exact'].get('95', 0):>8.1f}{figures['signup_server'].get('95', 0):>7.1f}"
        + "".join(
            f"{cpu.get(k, 0):>6.2f}" for k in ("web", "worker", "postgres", "locust", "other")
        )
        + f"{cpu.get('machine', 0):>6.2f}  {'PASS' if figures['ok'] else 'FAIL'}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.curve", description=__doc__)
    parser.add_argument("--scenario", default="mixed", choices=run.SCENARIOS)
    parser.add_argument("--rates", type=float, nargs="+", default=[5, 10, 20, 40, 80])
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--arrivals", default="poisson", choices=run.ARRIVALS)
    parser.add_argument("--web-workers", type=int, default=2 * run.CORES)
    parser.add_argument("--results", type=Path, default=ROOT / "results" / "load" / "curve")
    args = parser.parse_args(argv)
    lines = [
        f"{args.scenario}, {args.arrivals} arrivals, {args.duration} s per point,"
        f" {args.web_workers} web workers",
        COLUMNS,
    ]
    points = []
    for rate in args.rates:
        out = args.results / f"{args.scenario}-{args.arrivals}-w{args.web_workers}-r{rate:g}"
        run.main(
            [
                "--scenario", args.scenario, "--rate", str(rate), "--duration", str(args.duration),
                "--web-workers", str(args.web_workers), "--results", str(out),
                "--arrivals", args.arrivals,
            ]
        )  # fmt: skip
        summary = out / "summary.json"
        if not summary.exists():
            lines.append(f"{rate:>7g}  no result (see {out})")
            continue
        figures = json.loads(summary.read_text())
        points.append(figures)
        lines.append(row(figures))
        print("\n".join(lines), flush=True)
    text = "\n".join(lines)
    print(text)
    args.results.mkdir(parents=True, exist_ok=True)
    name = f"{args.scenario}-{args.arrivals}-w{args.web_workers}"
    (args.results / f"{name}.txt").write_text(text + "\n")
    (args.results / f"{name}.json").write_text(json.dumps(points, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
