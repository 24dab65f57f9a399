"""Steady arrivals: one shared schedule, each user keeps its own phase on it.

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

import math
import time
from dataclasses import dataclass, field


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
        """Seconds from the epoch at which arrival `index` (0-based) is due."""
        remaining = float(index)
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
    epoch: float | None = None
    slots_taken: int = 0
    missed: int = 0
    arrivals: int = 0
    lags_ms: list[float] = field(default_factory=list)

    def due(self, index: int) -> float:
        return (self.epoch or 0.0) + self.schedule.time_of(index)

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
        p95 = lags[max(0, math.ceil(0.95 * len(lags)) - 1)] if lags else 0.0
        return {
            "segments": self.schedule.segments,
            "users": self.users,
            "arrivals": self.arrivals,
            "missed_slots": self.missed,
            "start_lag_p95_ms": round(p95, 1),
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
