"""--report-only: latency and inbox figures are reported, never gated; a crash,
lost or duplicated mail, the outbox and the hasher still fail the run.

The CI load env runs its capacity point and its slow-provider point this way
after the gated run (tox.ini [testenv:load]).
"""

import json

import pytest

from loadtests import cpu, run
from loadtests.report import SIGNUP, Check, MailFigures
from loadtests.tests.test_p95_gate import requests

LOCUST_COLUMNS = "Type,Name,Request Count,Failure Count,Requests/s,50%,95%,99%"
ARGON2ID = {"argon2$argon2id$v=19": 40}
SLOW = [150.0] * 40  # signup p95 over the 100 ms bound
QUICK = [40.0] * 40
# cores used over 2 s (loadtests.cpu.usage)
CPU_USED = {
    **dict.fromkeys(cpu.COMPONENTS, 0.0),
    **{"web": 0.5, "worker": 0.1, "postgres": 0.05, "redis": 0.01},
    **{"other": 0.0, "machine": 0.66, "seconds": 2.0},
}


def args(tmp_path, *more):
    argv = ["--scenario", "signup", "--rate", "20", "--duration", "2"]
    return run.parse_args([*argv, "--results", str(tmp_path), *more])


def measured(tmp_path, times=SLOW, *, inbox_ms=2500.0, missing=(), rc=0, failures=0):
    """A finished run's files and figures: 40 signups, each mailed (unless missing)."""
    rows = requests(SIGNUP, times)
    (tmp_path / "locust_stats_final.csv").write_text(
        f"{LOCUST_COLUMNS}\nPOST,{SIGNUP},40,{failures},20,40,150,150\n"
    )
    (tmp_path / "pacing.json").write_text(json.dumps({"arrivals": 40, "missed_slots": 0}))
    mail = MailFigures(
        expected=40,
        received=40 - len(missing),
        missing=list(missing),
        inbox_ms=[inbox_ms] * (40 - len(missing)),
    )
    return run.Measured(
        rc=rc,
        rows=rows,
        hash_ms=20.0,
        cpu_used=CPU_USED,
        mail=mail,
        states={"sent": 80},
        schemes=ARGON2ID,
    )


def test_slow_signups_and_a_slow_inbox_are_reported_not_gated(tmp_path, capsys):
    code, checks = run.conclude(args(tmp_path, "--report-only"), measured(tmp_path))

    assert code == 0
    by_name = {c.name: c for c in checks}
    for name in ("signup p95", "time to inbox p95", "offered rate delivered"):
        assert by_name[name].gated is False
    assert by_name["signup p95"].ok is False  # measured as it was: over the bound
    assert by_name["one verification email per accepted signup"].gated
    out = capsys.readouterr().out
    assert "REPORTED  signup p95: exact p95 150.0 ms" in out
    assert "(would FAIL; reported, not gated)" in out
    assert "FAIL  " not in out
    assert "result: PASS (latency and inbox reported, not gated)" in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["ok"] is True
    assert summary["report_only"] is True
    assert {c["name"]: c["gated"] for c in summary["checks"]}["signup p95"] is False


def test_without_report_only_the_same_run_fails(tmp_path, capsys):
    code, _ = run.conclude(args(tmp_path), measured(tmp_path))

    assert code == 1
    out = capsys.readouterr().out
    assert "FAIL  signup p95" in out
    assert "FAIL  time to inbox p95" in out
    assert "REPORTED" not in out


@pytest.mark.parametrize(
    ("broken", "failing"),
    [
        ({"missing": ["lost@example.com"]}, "one verification email per accepted signup"),
        ({"rc": -1}, "no unexpected failures"),  # Locust killed at the deadline
        ({"failures": 3}, "no unexpected failures"),  # 500s, connection errors
    ],
)
def test_report_only_still_fails_on_lost_mail_and_crashes(tmp_path, capsys, broken, failing):
    code, checks = run.conclude(
        args(tmp_path, "--report-only"), measured(tmp_path, QUICK, **broken)
    )

    assert code == 1
    assert run.failed_gates(checks) == {failing}
    assert f"FAIL  {failing}" in capsys.readouterr().out


def test_a_duplicated_email_fails_too(tmp_path):
    m = measured(tmp_path, QUICK)
    m.mail.extra = ["twice@example.com"]

    code, checks = run.conclude(args(tmp_path, "--report-only"), m)

    assert code == 1
    assert run.failed_gates(checks) == {"one verification email per accepted signup"}


def test_one_summary_line_with_the_figures_asked_for(tmp_path, capsys):
    a = args(tmp_path, "--report-only", "--mail-delay", "0.5", "--worker-threads", "16")
    run.conclude(a, measured(tmp_path, [10.0] * 20 + [30.0] * 20, inbox_ms=900.0))

    point = [line for line in capsys.readouterr().out.splitlines() if line.startswith("point:")]
    # CPU: (0.5 + 0.1 + 0.05 + 0.01) cores x 2 s / 40 signups = 33 ms = 1.65 hashes of 20 ms
    assert point == [
        "point: signup at 20/s, mail delay 0.5 s, 16 worker threads:"
        " signup p50/p95/p99 10.0/30.0/30.0 ms, time to inbox p95 900 ms,"
        " cpu per signup 1.65 hashes"
    ]
    figures = json.loads((tmp_path / "summary.json").read_text())["point"]
    assert figures["mail_delay"] == 0.5
    assert figures["inbox_p95_ms"] == 900.0


def test_the_summary_line_says_what_was_not_measured():
    a = run.parse_args(["--host", "https://staging.example", "--scenario", "signup"])
    point = run.point_figures(a, run.Measured(), {})

    assert run.point_line(point) == (
        "point: signup at 10/s, mail delay 0 s: signup p50/p95/p99 -,"
        " time to inbox p95 -, cpu per signup -"
    )


def test_the_spikes_p95_is_reported_too():
    a = run.parse_args(["--scenario", "spike", "--report-only"])
    checks = [Check("signup p95 after the spike", False, ""), Check("outbox finished", False, "")]

    assert [c.gated for c in run.gate(a, checks)] == [False, True]


def test_report_only_does_not_confirm():
    with pytest.raises(SystemExit):
        run.parse_args(["--scenario", "signup", "--report-only", "--confirm"])


def test_a_not_gated_failure_is_not_measured_again(monkeypatch, tmp_path):
    """main(): only gated failures count (the --confirm logic reads the same set)."""
    slow = Check("signup p95", False, "p95 130 ms", gated=False)
    outcomes = [(0, [slow])]
    monkeypatch.setattr(run, "run_once", lambda a: outcomes.pop(0))

    assert run.main(["--results", str(tmp_path), "--report-only"]) == 0
    assert run.failed_gates([slow]) == set()
