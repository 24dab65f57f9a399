"""Silk keeps no secret of a query string or credential header (issue 9,
point 4). Silk's settings are read at import, so the check
(silk_query_mask_check.py) runs in its own pytest process with
SILK_ENABLED=1, on its own test database."""

import os
import subprocess
import sys

import pytest
from django.conf import settings

from conftest import ROOT


@pytest.mark.slow
def test_silk_keeps_no_query_string_secret_in_its_own_process():
    db = settings.DATABASES["default"]
    name = db["NAME"].removeprefix("test_") + "_silkq"  # its own test database
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{name}"
    env = dict(os.environ, SILK_ENABLED="1", DATABASE_URL=url)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "core/tests/silk_query_mask_check.py",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )

    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "2 passed" in result.stdout
