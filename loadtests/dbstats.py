"""What a run cost PostgreSQL and Redis, per accepted signup: the capacity model's inputs.

Counters read before and after the load: PostgreSQL's per-database commits,
rows inserted/updated/deleted and the cluster's WAL bytes; Redis's commands
and network bytes. WAL and Redis counters are server-wide, so the figures are
only this run's on an otherwise quiet machine (the runner prints the load
average beside them).
"""

from dataclasses import dataclass

import psycopg
import redis

PG_QUERY = """
SELECT xact_commit, tup_inserted, tup_updated, tup_deleted, tup_returned + tup_fetched,
       pg_current_wal_lsn() - '0/0'::pg_lsn
FROM pg_stat_database WHERE datname = current_database()
"""
PG_FIELDS = ("commits", "rows inserted", "rows updated", "rows deleted", "rows read", "WAL bytes")
REDIS_FIELDS = ("commands", "bytes in", "bytes out")


@dataclass
class Counters:
    pg: tuple[float, ...] = ()
    redis: tuple[float, ...] = ()


def snapshot(database_url: str, redis_url: str) -> Counters:
    counters = Counters()
    try:
        with psycopg.connect(database_url) as conn:
            conn.execute("SELECT pg_stat_clear_snapshot()")
            counters.pg = tuple(float(v) for v in conn.execute(PG_QUERY).fetchone())
    except psycopg.Error:
        pass
    try:
        stats = redis.Redis.from_url(redis_url).info("stats")
        counters.redis = tuple(
            float(stats[k])
            for k in ("total_commands_processed", "total_net_input_bytes", "total_net_output_bytes")
        )
    except redis.RedisError:
        pass
    return counters


def per_signup(before: Counters, after: Counters, signups: int) -> dict[str, float]:
    """Each counter's growth during the run, divided by the accepted signups."""
    if signups <= 0:
        return {}
    out = {}
    for prefix, fields, a, b in (
        ("pg", PG_FIELDS, before.pg, after.pg),
        ("redis", REDIS_FIELDS, before.redis, after.redis),
    ):
        if a and b:
            for field, x, y in zip(fields, a, b, strict=True):
                out[f"{prefix} {field}"] = (y - x) / signups
    return out


def per_signup_line(costs: dict[str, float]) -> str:
    if not costs:
        return "database and broker per signup: not measured"
    return "per accepted signup: " + ", ".join(f"{k} {v:.1f}" for k, v in costs.items())
