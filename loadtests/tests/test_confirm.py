"""--confirm: only a run that failed latency checks alone is measured again."""

from pathlib import Path

import pytest

from loadtests import run
from loadtests.run import Check

PASS = Check("signup p95", True, "")
SLOW = Check("signup p95", False, "p95 130 ms")
LOST = Check("one verification email per accepted signup", False, "missing 1")


@pytest.fixture
def runs(monkeypatch, tmp_path):
    """Replace one load run by the next scripted outcome; record each results dir."""
    outcomes: list[tuple[int, list[Check]]] = []
    seen: list[Path] = []

    def run_once(args):
        seen.append(args.results)
        return outcomes.pop(0)

    monkeypatch.setattr(run, "run_once", run_once)
    return outcomes, seen, ["--results", str(tmp_path / "mixed")]


@pytest.mark.parametrize(
    ("first", "second", "code", "runs_made"),
    [
        ((0, [PASS]), None, 0, 1),
        ((1, [SLOW]), (0, [PASS]), 0, 2),  # noise: the second run decides
        ((1, [SLOW]), (1, [SLOW]), 1, 2),  # a slowed path fails twice
        ((1, [SLOW, LOST]), None, 1, 1),  # a lost email is never retried
        ((2, []), None, 2, 1),  # setup failed
    ],
)
def test_confirm(runs, first, second, code, runs_made):
    outcomes, seen, argv = runs
    outcomes += [first] + ([second] if second else [])

    assert run.main([*argv, "--confirm"]) == code
    assert len(seen) == runs_made
    if runs_made == 2:
        assert seen[1].name == "mixed-confirm"


def test_without_confirm_one_run_decides(runs):
    outcomes, seen, argv = runs
    outcomes += [(1, [SLOW]), (0, [PASS])]

    assert run.main(argv) == 1
    assert len(seen) == 1
