"""CORS for a browser client on an allowed origin: the preflight advertises
only the methods the API takes, and the headers the contract promises are
readable (WWW-Authenticate on every 401). More in test_web_edges.py."""

import pytest
from django.test import Client, override_settings

from core.api import api

ORIGIN = "https://app.payshift.test"


def preflight(path: str, method: str):
    return Client().options(
        path,
        HTTP_ORIGIN=ORIGIN,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization,content-type",
    )


def advertised(response) -> set[str]:
    return {m.strip().upper() for m in response["Access-Control-Allow-Methods"].split(",")}


def api_methods() -> set[str]:
    """Every method some route of the OpenAPI document takes."""
    paths = api.get_openapi_schema()["paths"]
    return {method.upper() for operations in paths.values() for method in operations}


@override_settings(CORS_ALLOWED_ORIGINS=[ORIGIN])
def test_preflight_advertises_only_the_methods_the_api_takes():
    response = preflight("/api/v1/me", "PATCH")

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    methods = advertised(response)
    assert "PUT" not in methods
    assert {"GET", "POST", "PATCH", "OPTIONS"} <= methods
    # A route taking a new method (DELETE, PUT) must be advertised here too.
    assert methods == api_methods() | {"OPTIONS"}


@override_settings(CORS_ALLOWED_ORIGINS=[ORIGIN])
@pytest.mark.django_db
def test_a_401_exposes_www_authenticate_to_an_allowed_origin():
    response = Client().get("/api/v1/me", HTTP_ORIGIN=ORIGIN)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    exposed = {h.strip().lower() for h in response["Access-Control-Expose-Headers"].split(",")}
    assert {"www-authenticate", "retry-after", "x-request-id"} <= exposed
