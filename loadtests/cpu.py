"""Who used the CPU during the run: web, worker, PostgreSQL, Locust, the rest.

Load generator and server share 2 cores, so a latency figure means little
without knowing whether the server, the database or Locust itself was
short of CPU, or whether something else on the machine (other jobs) was.
Reads /proc only (Linux); elsewhere it reports nothing.
"""

import os
import time
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
COMPONENTS = ("web", "worker", "postgres", "redis", "sink", "locust")


def component_of(comm: str, cmdline: str) -> str | None:
    if "gunicorn" in cmdline and "core.wsgi" in cmdline:
        return "web"
    if "rundramatiq" in cmdline or ("dramatiq" in cmdline and "django_dramatiq" in cmdline):
        return "worker"
    if "messaging.sink" in cmdline:
        return "sink"
    if "locust" in cmdline and "loadtests" in cmdline:
        return "locust"
    if comm.startswith("postgres"):
        return "postgres"
    if comm.startswith("redis-server"):
        return "redis"
    return None


@dataclass
class Snapshot:
    at: float
    machine_busy: float  # seconds of CPU used by anything since boot
    by_component: dict[str, float]  # seconds of CPU, processes alive now


def _machine_busy() -> float:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return (sum(values[:8]) - idle) / TICK


def snapshot() -> Snapshot | None:
    if not Path("/proc/stat").exists():
        return None
    totals = dict.fromkeys(COMPONENTS, 0.0)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # the process ended meanwhile
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        name = component_of(comm, cmdline)
        if name is None:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        totals[name] += (int(fields[11]) + int(fields[12])) / TICK  # utime + stime
    return Snapshot(at=time.monotonic(), machine_busy=_machine_busy(), by_component=totals)


def usage(before: Snapshot | None, after: Snapshot | None) -> dict[str, float]:
    """Cores used on average by each component; 'other' is everything else."""
    if before is None or after is None or after.at <= before.at:
        return {}
    seconds = after.at - before.at
    used = {
        name: max(0.0, after.by_component[name] - before.by_component[name]) / seconds
        for name in COMPONENTS
    }
    machine = (after.machine_busy - before.machine_busy) / seconds
    used["other"] = max(0.0, machine - sum(used.values()))
    used["machine"] = machine
    used["seconds"] = seconds
    return used


SERVICE = ("web", "worker", "postgres", "redis")  # what a signup costs the service


def per_signup_ms(used: dict[str, float], signups: int) -> dict[str, float]:
    """ms of CPU per accepted signup for each service process (Locust and the sink apart)."""
    if not used or signups <= 0:
        return {}
    cpu_ms = {name: used[name] * used["seconds"] * 1000 / signups for name in SERVICE}
    cpu_ms["total"] = sum(cpu_ms.values())
    return cpu_ms


def per_signup_line(
    cpu_ms: dict[str, float],
    hash_ms: float,
    signups: int,
    loaded_hash: tuple[float, int] | None = None,
) -> str:
    """The CPU per signup, in ms and in hashes of the quiet machine (the goal's
    yardstick); loaded_hash (mean CPU ms of the web's own hashes in the run,
    and how many) adds the same total in hashes as they ran under this load."""
    if not cpu_ms:
        return "cpu per signup: not measured"
    parts = ", ".join(f"{name} {cpu_ms[name]:.1f}" for name in SERVICE)
    ratio = f" = {cpu_ms['total'] / hash_ms:.2f} hashes" if hash_ms else ""
    line = (
        f"cpu per accepted signup (ms, {signups} signups; all requests of the run charged to"
        f" them): {parts}; total {cpu_ms['total']:.1f}{ratio}"
        f" (one Argon2id hash {hash_ms:.1f} ms, measured in this run)"
    )
    if loaded_hash is not None:
        ms, count = loaded_hash
        line += (
            f"; under this load one hash took {ms:.1f} ms of CPU in the web (mean of {count}),"
            f" so the total is {cpu_ms['total'] / ms:.2f} of those"
        )
    return line


def usage_line(used: dict[str, float], cores: int) -> str:
    if not used:
        return "cpu: not measured"
    parts = [f"{name} {used[name]:.2f}" for name in (*COMPONENTS, "other")]  # cores
    return f"cpu (cores used, of {cores}): " + ", ".join(parts) + f"; machine {used['machine']:.2f}"
