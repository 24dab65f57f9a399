"""Arrivals on one shared schedule, each user keeps its own phase on it.

Two arrival processes over the same rate schedule: "poisson" (exponential
gaps: how independent clients really arrive, and what the p95 claim is
judged on, see docs/measuring.md) and "uniform" (evenly spaced: a named,
gentler variant). A Poisson process with a changing rate is made by time
rescaling: unit-rate exponential gaps accumulate "mass", and the schedule
maps mass m to the time its cumulative intensity reaches m (for uniform
arrivals, arrival i is simply at mass i).

Why not constant_pacing: it counts from each user's spawn, so users spawned
together fire in the same few milliseconds every period (a burst test in
disguise; see docs/measuring.md). Here arrival i of the whole run is due at
the time the schedule has delivered i arrivals (rate may change: a spike),
and user k of N takes arrivals k, k+N, k+2N, ... So the N users interleave
into an even stream however fast they were spawned, and keep interleaving
across a rate change (a per-user `next_start += period` loses the phases
there: after a 10x spike, 40 users fired within 3 s).

A user that is more than one of its own turns late (the server or Locust
is saturated) skips the stale turns and counts them: missed > 0 means the
offered rate was not delivered. Pure Python: no Locust import.
"""

import random
import time
from dataclasses import dataclass, field
from typing import Literal

from loadtests.stats import percentile

ARRIVALS = ("poisson", "uniform")


@dataclass
class Schedule:
    """Piecewise-constant arrival rate: (start second, arrivals/s) segments from 0."""

    segments: list[tuple[float, float]]

    @classmethod
    def steady(cls, rate: float) -> "Schedule":
        return cls([(0.0, rate)])

    @classmethod
    def spike(cls, rate: float, *, at: float, seconds: float, factor: float) -> "Schedule":
        return cls([(0.0, rate), (at, rate * factor), (at + seconds, rate)])

    def time_of(self, index: int) -> float:
        """Seconds from the epoch at which evenly spaced arrival `index` (0-based) is due."""
        return self.at(float(index))

    def at(self, mass: float) -> float:
        """Seconds from the epoch at which the cumulative intensity reaches `mass`."""
        remaining = mass
        for (start, rate), nxt in zip(self.segments, [*self.segments[1:], None], strict=True):
            if nxt is None:
                return start + remaining / rate
            span = (nxt[0] - start) * rate
            if remaining < span:
                return start + remaining / rate
            remaining -= span
        raise AssertionError("unreachable: the last segment is open-ended")


@dataclass
class Grid:
    """What the users of one run share: the schedule, the epoch and the figures."""

    schedule: Schedule
    users: int  # N: arrival i belongs to user i mod N
    arrivals_process: Literal["poisson", "uniform"] = "poisson"
    seed: int | None = None
    epoch: float | None = None
    slots_taken: int = 0
    missed: int = 0
    arrivals: int = 0
    lags_ms: list[float] = field(default_factory=list)
    _masses: list[float] = field(default_factory=list, repr=False)
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.arrivals_process not in ARRIVALS:
            raise ValueError(f"arrivals must be one of {ARRIVALS}, not {self.arrivals_process!r}")
        self._rng = random.Random(self.seed)

    def mass(self, index: int) -> float:
        """Cumulative unit-rate mass of arrival `index` (drawn lazily, reproducible by seed)."""
        if self.arrivals_process == "uniform":
            return float(index)
        while len(self._masses) <= index:
            last = self._masses[-1] if self._masses else 0.0
            self._masses.append(last + self._rng.expovariate(1.0))
        return self._masses[index]

    def due(self, index: int) -> float:
        return (self.epoch or 0.0) + self.schedule.at(self.mass(index))

    def join(self, now: float | None = None) -> "Pacer":
        """A new user takes the next phase; a late joiner starts at its next turn."""
        now = time.monotonic() if now is None else now
        if self.epoch is None:
            self.epoch = now
        pacer = Pacer(grid=self, index=self.slots_taken % self.users)
        self.slots_taken += 1
        while self.due(pacer.index) < now:
            pacer.index += self.users
        return pacer

    def summary(self) -> dict:
        lags = sorted(self.lags_ms)
        return {
            "arrivals_process": self.arrivals_process,
            "segments": self.schedule.segments,
            "users": self.users,
            "arrivals": self.arrivals,
            "missed_slots": self.missed,
            "start_lag_p95_ms": round(percentile(lags, 95), 1),
            "start_lag_max_ms": round(lags[-1], 1) if lags else 0.0,
        }


@dataclass
class Pacer:
    """One user's turns on the grid: arrivals index, index+N, index+2N, ..."""

    grid: Grid
    index: int

    def delay(self, now: float | None = None) -> float:
        """Seconds to sleep before this user's next turn (its wait_time)."""
        now = time.monotonic() if now is None else now
        return max(0.0, self.grid.due(self.index) - now)

    def started(self, now: float | None = None) -> None:
        """Call as the task starts: records lateness, moves to the next turn."""
        now = time.monotonic() if now is None else now
        grid = self.grid
        grid.arrivals += 1
        grid.lags_ms.append(max(0.0, now - grid.due(self.index)) * 1000)
        self.index += grid.users
        while grid.due(self.index + grid.users) <= now:  # two turns due: skip the stale one
            self.index += grid.users
            grid.missed += 1
