"""Median ms of one production password hash on this machine, now.

The yardstick for "CPU per signup" (loadtests.run measures it in the same
run, since the machine's speed drifts between runs):
    python -m loadtests.hashcost [-n 30]
"""

import argparse
import os
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--samples", type=int, default=30)
    args = parser.parse_args()
    os.environ["DJANGO_SETTINGS_MODULE"] = "core.settings"
    os.environ.setdefault("SECRET_KEY", "hash-cost-only-no-requests-served")
    os.environ.setdefault("ALLOWED_HOSTS", "localhost")  # required with DEBUG off; none served
    import django

    django.setup()
    from django.contrib.auth.hashers import get_hasher, make_password

    assert get_hasher().algorithm == "argon2", "not the production hasher"
    times = []
    for _ in range(args.samples):
        start = time.perf_counter()
        make_password("correct horse battery staple")
        times.append((time.perf_counter() - start) * 1000)
    print(f"{statistics.median(times):.2f}")


if __name__ == "__main__":
    main()
