"""The wheel is the service: core, signup and messaging, nothing else (the load
tests and benchmarks are development tooling), built without warnings."""

import subprocess
import sys
import zipfile

import pytest

from conftest import ROOT


@pytest.mark.slow
def test_wheel_holds_only_the_service(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-v",  # the build backend's own output, where setuptools warns
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    [wheel] = tmp_path.glob("payshift_signup-*.whl")
    names = zipfile.ZipFile(wheel).namelist()

    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"core", "signup", "messaging"}
    assert not [n for n in names if "/tests/" in n], "the tests stay in the checkout"
    warnings = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if "warning" in line.lower() and "setuptools" in line.lower()
    ]
    assert warnings == []
    assert any(n.startswith("signup/templates/signup/email/verification/") for n in names)
    assert "messaging/migrations/0003_outbox_request_id.py" in names
    requires = next(n for n in names if n.endswith("METADATA"))
    metadata = zipfile.ZipFile(wheel).read(requires).decode()
    runtime = [
        line
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]
    assert not any("aiosmtpd" in line for line in runtime), "aiosmtpd is a dev dependency"
