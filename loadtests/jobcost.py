"""CPU of the delivery job alone: no Dramatiq, no HTTP, one process.

    DATABASE_URL=postgres://.../scratch EMAIL_PORT=2525 SECRET_KEY=... \\
        python -m loadtests.jobcost [-n 300] [--profile]

Signs up n addresses (the flow, the hash made once), then delivers each
signup's rows as the worker's job does (messaging.services.outbox_deliver:
the claim, the code, the notifications, the email to the SMTP server on
EMAIL_PORT, the sent mark) and prints this process's CPU and its PostgreSQL
backend's CPU per job. Beside loadtests.floor (what Dramatiq costs around a
job) it splits the worker's CPU per signup. Writes rows: point DATABASE_URL
at a scratch database, and run an SMTP sink (python -m messaging.sink).
"""

import argparse
import os
import resource
import time
import uuid
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--jobs", type=int, default=300)
    parser.add_argument("--profile", action="store_true", help="cProfile (CPU time) the jobs")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
    import django

    django.setup()
    from django.contrib.auth.hashers import make_password
    from django.db import connection

    from messaging.models import Outbox
    from messaging.services import outbox_deliver
    from signup.flows.signup import user_signup_hashed

    password_hash = make_password("correct horse battery staple")
    jobs = []
    for _ in range(args.jobs + 1):
        email = f"jobcost-{uuid.uuid4().hex[:12]}@example.com"
        user_signup_hashed(
            email=email, password_hash=password_hash, verification_token=uuid.uuid4().hex
        )
        rows = Outbox.objects.filter(user__email=email).order_by("pk")
        jobs.append(list(rows.values_list("pk", flat=True)))
    outbox_deliver(outbox_ids=jobs.pop())  # warm: templates, connections
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile(time.thread_time)
        profiler.enable()
    own, pg = _own_cpu(), _backend_cpu(backend)
    for ids in jobs:
        outbox_deliver(outbox_ids=ids)
    own, pg = _own_cpu() - own, _backend_cpu(backend) - pg
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
    count = len(jobs)
    print(f"{count} jobs: this process {1000 * own / count:.2f} ms of CPU a job,"
          f" its PostgreSQL backend {1000 * pg / count:.2f} ms")  # fmt: skip
    return 0


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _backend_cpu(pid: int) -> float:
    """utime + stime of a local PostgreSQL backend, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    raise SystemExit(main())
