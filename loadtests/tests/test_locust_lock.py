"""Locust's virtualenv installs from a lock that holds pyproject's pins
(a pin moved without `scripts/lock` would install the old version)."""

from loadtests.locust_env import LOCK, pinned


def test_the_lock_holds_every_pin_of_the_load_extra_with_hashes():
    lock = LOCK.read_text()
    for pin in pinned():
        assert f"\n{pin} \\\n    --hash=sha256:" in lock, (
            f"{pin} not in {LOCK.name}: run scripts/lock"
        )
