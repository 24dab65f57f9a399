"""Fault scenarios: the real processes under steady load while a part fails.

Run with `scripts/test -e faults` (or see loadtests/README.md). Not part of
the normal suite: each scenario takes a minute or more of wall time.
"""
