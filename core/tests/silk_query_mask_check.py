"""Run by test_silk_query_mask.py in its own process with SILK_ENABLED=1 (Silk's
settings are read at import). Not collected by the normal run (no test_ prefix).

Issue 9, point 4: with Silk on, GET /api/v1/me?token=...&code=...&password=...
was stored in silk_request.query_params in clear: Silk masks SILKY_SENSITIVE_KEYS
in bodies only. No secret of a query string (nor of an Authorization or other
credential header, nor of a redirect's Location) may reach Silk's tables.
"""

from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.db import connection

# Every value unique, so a leak names its key.
QUERY = {
    "token": "qs-token-7f3a91",
    "code": "qs-code-482913",
    "password": "qs-password-Tr0ub4dor",
    "mfa_code": "qs-mfa-code-662104",
    "recovery_code": "qs-recovery-code-ab12",
    "verification_token": "qs-verification-token-c0ffee",
    "current_password": "qs-current-password-x9",
    "new_password": "qs-new-password-y8",
    "key": "qs-key-5150",
    "secret": "qs-secret-8086",
    "Authorization": "qs-authorization-Bearer-z80",
    "PASSWORD": "qs-upper-password-6502",  # keys are matched whatever their case
}
HEADERS = {
    "HTTP_AUTHORIZATION": "Bearer hdr-bearer-token-68000",
    "HTTP_X_VERIFICATION_TOKEN": "hdr-verification-token-z8000",
    "HTTP_X_API_KEY": "hdr-api-key-i8080",
}
SECRETS = (*QUERY.values(), *(v.removeprefix("Bearer ") for v in HEADERS.values()))
NOT_SECRET = {"page": "2", "email_hint": "ada"}

pytestmark = [
    pytest.mark.skipif(not settings.SILK_ENABLED, reason="needs SILK_ENABLED=1"),
    pytest.mark.django_db(transaction=True),
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


def test_no_query_string_or_header_secret_reaches_silk(client, settings):
    settings.RATE_LIMIT_PER_IP = "off"
    query = urlencode({**QUERY, **NOT_SECRET}) + "&pass%77ord=qs-encoded-key-password-3"

    me = client.get(f"/api/v1/me?{query}", **HEADERS)
    login = client.post(
        f"/api/v1/auth/login?{query}", "{}", content_type="application/json", **HEADERS
    )
    # APPEND_SLASH answers with the query string in Location; the admin sends
    # an anonymous user to its login page with it (URL-encoded) in ?next=.
    redirect = client.get(f"/admin?{query}", **HEADERS)
    to_login = client.get(redirect["Location"], **HEADERS)
    login_page = client.get(to_login["Location"], **HEADERS)

    assert me.status_code == 401
    assert login.status_code in {400, 401, 422}
    assert (redirect.status_code, to_login.status_code, login_page.status_code) == (301, 302, 200)
    assert "qs-token-7f3a91" in redirect["Location"]  # the client still gets its redirect
    assert "qs-token-7f3a91" in to_login["Location"]
    from silk.models import Request

    paths = ["/api/v1/me", "/api/v1/auth/login", "/admin", "/admin/", "/admin/login/"]
    recorded = Request.objects.filter(path__in=paths)
    assert recorded.count() == 5  # Silk still records them, and the harmless parameters
    assert '"next": "/admin/?token=' in recorded.get(path="/admin/login/").query_params
    recorded = recorded.exclude(path="/admin/login/")
    assert all('"page": "2"' in r.query_params for r in recorded)
    assert all('"token": "' in r.query_params for r in recorded)  # the key, masked
    leaks = [
        (table, column, value[:300])
        for table, column, value in silk_values()
        if any(s in value for s in (*SECRETS, "qs-encoded-key-password-3"))
    ]
    assert leaks == [], "\n".join(map(str, leaks))


def test_the_view_still_gets_the_real_query_string(client, rf):
    from django.http import HttpResponse

    from core.profiling import silky_middleware

    seen = {}

    def view(request):
        seen.update(request.GET.dict(), auth=request.headers.get("Authorization"))
        return HttpResponse("ok")

    request = rf.get("/api/v1/me", QUERY, **HEADERS)
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()
    request.session = client.session
    silky_middleware(view)(request)

    assert seen["token"] == QUERY["token"]
    assert seen["auth"] == HEADERS["HTTP_AUTHORIZATION"]
