"""The NinjaAPI instance: routers, health and error shapes from docs/api.md."""

import logging
import math
from typing import Literal

from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema, Status
from ninja.errors import HttpError, Throttled, ValidationError

from core.errors import ApiError
from core.health import health_report, ready_report
from signup.api import router as signup_router

logger = logging.getLogger(__name__)

NOT_JSON = "Request body is not valid JSON. Send a JSON object with Content-Type: application/json."

api = NinjaAPI(
    title="Payshift signup API",
    version="1.0.0",
    description="Signup and onboarding. Contract: docs/api.md.",
    urls_namespace="api-v1",
)


class HealthOut(Schema):
    status: Literal["ok", "error"]
    database: Literal["ok", "error"]
    broker: Literal["ok", "error"]


class ReadyOut(Schema):
    status: Literal["ok", "degraded", "error"]
    database: Literal["ok", "error"]
    broker: Literal["ok", "error"]


class LiveOut(Schema):
    status: Literal["ok"]


@api.exception_handler(ApiError)
def api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    response = api.create_response(request, exc.body(), status=exc.status)
    for name, value in exc.headers.items():
        response[name] = value
    return response


@api.exception_handler(RequestDataTooBig)
def body_too_large(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return api.create_response(
        request,
        {"detail": "Request body is too large. Send at most 64 KiB of JSON."},
        status=413,
    )


@api.exception_handler(ValidationError)
def invalid_body(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    """422 with the field errors; an empty body is not JSON at all, so 400."""
    body_errors = any(error.get("loc", [None])[0] == "body" for error in exc.errors)
    if request.method in {"POST", "PUT", "PATCH"} and not request.body.strip() and body_errors:
        return api.create_response(request, {"detail": NOT_JSON}, status=400)
    return api.create_response(request, {"detail": exc.errors}, status=422)


@api.exception_handler(Throttled)
def throttled(request: HttpRequest, exc: Throttled) -> HttpResponse:
    wait = f" Try again in {math.ceil(exc.wait)} seconds." if exc.wait else ""
    return api.create_response(
        request, {"detail": f"Too many requests from your network.{wait}"}, status=429
    )


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    message = str(exc)
    if exc.status_code == 400 and message.startswith("Cannot parse request body"):
        message = NOT_JSON
    return api.create_response(request, {"detail": message}, status=exc.status_code)


@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def database_unavailable(request: HttpRequest, exc: DatabaseError) -> HttpResponse:
    """A dropped or unreachable database is an outage, not a bug: 503, no traceback."""
    logger.error("request path=%s outcome=db-unavailable error=%s", request.path, exc)
    response = api.create_response(
        request,
        {"detail": "The service is briefly unavailable. Please retry in a few seconds."},
        status=503,
    )
    response["Retry-After"] = "5"
    return response


@api.get("/health", response={200: HealthOut, 503: HealthOut}, tags=["health"])
def health(request: HttpRequest):
    """Checks the database and the broker, each with a short timeout."""
    report = health_report()
    return Status(200 if report["status"] == "ok" else 503, report)


@api.get("/health/ready", response={200: ReadyOut, 503: ReadyOut}, tags=["health"])
def health_ready(request: HttpRequest):
    """For load balancers: 200 while the database answers. A broker outage
    is "degraded" (signups still succeed), not a reason to drain this node."""
    report = ready_report()
    return Status(503 if report["status"] == "error" else 200, report)


@api.get("/health/live", response={200: LiveOut}, tags=["health"])
def health_live(request: HttpRequest):
    """For orchestrators: 200 while the process can answer; checks nothing else."""
    return {"status": "ok"}


api.add_router("/signup", signup_router)

# Accounts after signup (issue 9).
from signup.api_auth import router as auth_router  # noqa: E402
from signup.api_me import router as me_router  # noqa: E402

api.add_router("/auth", auth_router)
api.add_router("/me", me_router)

# --- JSON 404 with its code (core.middleware does Django's own 404/405) ------
from django.http import Http404  # noqa: E402  (kept here: a block of its own)


@api.exception_handler(Http404)
def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    """A view's 404 (no such object), with the code every /api/ 404 has."""
    return api.create_response(
        request, {"detail": str(exc) or "Not found.", "code": "not_found"}, status=404
    )
