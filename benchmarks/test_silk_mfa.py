"""Silk keeps no two-factor secret (issue 21): with Silk recording, every
two-factor path driven once (signup.tests.mfa_secrets) leaves the TOTP
secret, the recovery codes, the mfa_tokens and the access tokens out of
every Silk record: the SQL it logged (silk_sqlquery, parameters inlined),
the requests (path, query string, headers, bodies) and the answers
(headers, bodies; the enrolment's answer holds the secret, the confirm's the
codes, the second step's a token).

Silk's settings are read at import, so this needs SILK_ENABLED=1 in the
pytest process's environment, like test_silk_nplusone.py: tox -e bench runs
it in its own process.
"""

import json

import pytest
from django.conf import settings

from core.profiling import MASK
from signup.tests.mfa_secrets import ENROL, SECOND_STEP, database_dump, drive_two_factor, leaks

pytestmark = [
    pytest.mark.skipif(
        not settings.SILK_ENABLED, reason="needs SILK_ENABLED=1 (tox -e bench runs it that way)"
    ),
    pytest.mark.django_db(transaction=True),
]


def test_silk_records_no_two_factor_secret_or_code(api):
    from silk.models import Request, SQLQuery

    seen = drive_two_factor(api)

    paths = set(Request.objects.values_list("path", flat=True))
    assert {ENROL, f"{ENROL}/confirm", SECOND_STEP, "/api/v1/me/mfa/recovery-codes"} <= paths
    recorded = Request.objects.filter(path=ENROL).get()
    assert recorded.response.status_code == 200  # the answer that held the secret
    assert json.loads(recorded.encoded_headers)["authorization"] == MASK  # headers are kept
    assert SQLQuery.objects.filter(query__contains="signup_totpdevice").exists()
    assert SQLQuery.objects.filter(query__contains="signup_recoverycode").exists()

    silk = database_dump(prefix="silk_")
    assert {"table silk_request", "table silk_response", "table silk_sqlquery"} <= silk.keys()
    assert "signup_totpdevice" in silk["table silk_sqlquery"]
    found = leaks(seen.needles(), silk)
    assert not found, found
