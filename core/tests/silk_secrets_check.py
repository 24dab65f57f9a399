"""Run by test_silk_secrets.py in its own process with SILK_ENABLED=1 (Silk's
settings are read at import). Not collected by the normal run (no test_ prefix).

Issue 8, point 4: Silk stored passwords and codes: a JSON body sent as a form
became one unmasked key, and malformed JSON was kept verbatim. Whatever the
content type, no secret of a request body may reach any of Silk's tables.
Nor may an answer's: login and code answers carry an access token.
"""

import json

import pytest
from django.conf import settings
from django.db import connection

from signup.tests.conftest import make_user

PASSWORD = "Tr0ub4dor-silk-secret"
CODE = "318274"
SECRETS = (PASSWORD, CODE)

pytestmark = [
    pytest.mark.skipif(not settings.SILK_ENABLED, reason="needs SILK_ENABLED=1"),
    pytest.mark.django_db(transaction=True),
]

JSON_BODY = json.dumps({"email": "ada@example.com", "password": PASSWORD, "code": CODE})
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    "text/plain",
    "application/xml",
    None,
]
BODIES = [
    JSON_BODY,
    JSON_BODY[:-1],  # malformed JSON: answered 400
    f"email=ada%40example.com&password={PASSWORD}&code={CODE}",
    f'--xyz\r\nContent-Disposition: form-data; name="password"\r\n\r\n{PASSWORD}\r\n--xyz--\r\n',
]
PATHS = [
    "/api/v1/signup",
    "/api/v1/signup/verify",
    "/api/v1/signup/resend",
    "/api/v1/auth/login",
    "/api/v1/auth/code/verify",
    "/api/v1/auth/password/reset/confirm",
]


def silk_values() -> list[tuple[str, str, str]]:
    """(table, column, value) for every value of every Silk table."""
    tables = [t for t in connection.introspection.table_names() if t.startswith("silk_")]
    assert "silk_request" in tables
    values = []
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 (names from introspection)
            columns = [c.name for c in cursor.description]
            for row in cursor.fetchall():
                values.extend((table, col, str(v)) for col, v in zip(columns, row, strict=True))
    return values


def test_no_body_secret_reaches_silk_whatever_the_content_type(client, settings):
    settings.RATE_LIMIT_PER_IP = "off"
    make_user("ada@example.com")
    statuses = set()
    for path in PATHS:
        for body in BODIES:
            for content_type in CONTENT_TYPES:
                extra = {"CONTENT_TYPE": content_type} if content_type else {}
                statuses.add(client.generic("POST", path, body.encode(), **extra).status_code)
        client.post(path, JSON_BODY, content_type="application/json")

    from silk.models import Request

    assert Request.objects.filter(path__in=PATHS).count() >= len(PATHS)  # Silk still records
    assert {202, 400, 415} <= statuses
    leaks = [(t, c, v[:300]) for t, c, v in silk_values() if any(s in v for s in SECRETS)]
    assert leaks == []


def test_no_access_token_from_an_answer_reaches_silk(client, settings):
    settings.RATE_LIMIT_PER_IP = "off"
    make_user("ada@example.com", verified=True, password=PASSWORD)

    response = client.post(
        "/api/v1/auth/login",
        {"email": "ada@example.com", "password": PASSWORD},
        content_type="application/json",
    )

    assert response.status_code == 200
    token = response.json()["access_token"]
    from silk.models import Request

    assert Request.objects.filter(path="/api/v1/auth/login").exists()  # recorded, without it
    assert [(t, c) for t, c, v in silk_values() if token in v] == []
