"""What a run cost PostgreSQL and Redis, per accepted signup: the capacity model's inputs.

Counters read before and after the load: PostgreSQL's per-database commits,
rows inserted/updated/deleted and the cluster's WAL bytes; Redis's commands
and network bytes. WAL and Redis counters are server-wide, so the figures are
only this run's on an otherwise quiet machine (the runner prints the load
average beside them). And the web's password hashes (their count and CPU,
from its /metrics): what one hash costs under this load, beside the quiet
machine's hash the runner measures before it.
"""

import urllib.request
from dataclasses import dataclass

import psycopg
import redis
from prometheus_client.parser import text_string_to_metric_families

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
    hashes: tuple[float, float] | None = None  # (count, CPU seconds) over the web nodes


HASH_METRIC = "payshift_password_hash_cpu_seconds"


def web_hashes(urls: list[str]) -> tuple[float, float] | None:
    """(hashes, CPU seconds of them) summed over the web nodes' /metrics; None if unread."""
    count = seconds = 0.0
    for url in urls:
        try:
            with urllib.request.urlopen(f"{url}/metrics", timeout=5) as answer:  # noqa: S310 (http, ours)
                text = answer.read().decode()
        except OSError:  # urllib's URLError is one
            return None
        found = hash_totals(text)
        if found is None:
            return None
        count, seconds = count + found[0], seconds + found[1]
    return count, seconds


def hash_totals(text: str) -> tuple[float, float] | None:
    """(count, sum) of the password hash histogram in a Prometheus exposition."""
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == HASH_METRIC:
            for sample in family.samples:
                values[sample.name] = values.get(sample.name, 0.0) + sample.value
    if f"{HASH_METRIC}_count" not in values:
        return None
    return values[f"{HASH_METRIC}_count"], values.get(f"{HASH_METRIC}_sum", 0.0)


def hash_under_load_ms(before: Counters, after: Counters) -> tuple[float, int] | None:
    """Mean CPU ms of one web hash during the run, and how many there were."""
    if before.hashes is None or after.hashes is None:
        return None
    count = after.hashes[0] - before.hashes[0]
    if count <= 0:
        return None
    return 1000 * (after.hashes[1] - before.hashes[1]) / count, int(count)


def snapshot(database_url: str, redis_url: str, web_urls: list[str] | None = None) -> Counters:
    counters = Counters()
    if web_urls:
        counters.hashes = web_hashes(web_urls)
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
