"""python manage.py silk_nplusone [--threshold 5] [--path-prefix /api/]

Reads the requests and SQL that Silk recorded (SILK_ENABLED=1), groups each
request's statements by shape (core.sqlshape: values, numbers and IN-lists
taken out) and reports every request where one shape ran more than
--threshold times: the signature of an N+1. Exits 1 when it finds one, so
CI can run it after sending traffic through Silk.

Silk records ORM SELECT/UPDATE/DELETE statements, not INSERTs or raw
cursor SQL: an N+1 of inserts needs the query-count gate
(benchmarks/test_query_counts.py).
"""

from collections import Counter, defaultdict

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError

from core.sqlshape import sql_shape

SAMPLE_CHARS = 300


class Command(BaseCommand):
    help = "Report requests recorded by Silk that repeat one query shape (N+1); exit 1 if any."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--threshold",
            type=int,
            default=5,
            help="flag a request when one query shape runs more than this many times (default 5)",
        )
        parser.add_argument(
            "--path-prefix", default="", help="only requests whose path starts with this"
        )

    def handle(self, *args, threshold: int, path_prefix: str, **options) -> None:
        if threshold < 1:
            raise CommandError("--threshold must be at least 1.")
        if not apps.is_installed("silk"):
            raise CommandError(
                "Silk is not installed. Run with SILK_ENABLED=1 (the process that "
                "served the requests must have had it too, or nothing was recorded)."
            )
        from silk.models import Request, SQLQuery

        requests = {
            r["id"]: r
            for r in Request.objects.filter(path__startswith=path_prefix).values(
                "id", "method", "path", "start_time"
            )
        }
        shapes: dict[str, Counter] = defaultdict(Counter)
        samples: dict[tuple[str, str], str] = {}
        statements = 0
        queries = SQLQuery.objects.filter(request__path__startswith=path_prefix)
        for request_id, sql in queries.values_list("request_id", "query").iterator():
            shape = sql_shape(sql)
            shapes[request_id][shape] += 1
            samples.setdefault((request_id, shape), sql)
            statements += 1

        findings = []
        for request_id, counter in shapes.items():
            shape, count = counter.most_common(1)[0]
            if count > threshold:
                findings.append((requests[request_id], shape, count))
        findings.sort(key=lambda f: f[0]["start_time"])

        for request, shape, count in findings:
            sample = samples[(request["id"], shape)][:SAMPLE_CHARS]
            self.stdout.write(
                f"N+1: {request['method']} {request['path']} ran one query shape {count} times "
                f"(request {request['id']} at {request['start_time']:%Y-%m-%d %H:%M:%S})\n"
                f"  shape:  {shape[:SAMPLE_CHARS]}\n"
                f"  sample: {sample}"
            )
        self.stdout.write(
            f"Checked {len(requests)} request(s), {statements} recorded statement(s); "
            f"threshold {threshold} per shape per request."
        )
        if findings:
            raise CommandError(
                f"{len(findings)} request(s) repeat one query shape more than {threshold} times."
            )
