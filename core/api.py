"""The NinjaAPI instance: routers, health and error shapes from docs/api.md."""

import logging
import math
from typing import Literal

from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema, Status
from ninja.errors import HttpError, Throttled, ValidationError

from core.bodies import NOT_JSON, TOO_LARGE
from core.errors import ApiError, rate_limited
from core.health import health_report, ready_report
from signup.api.signup import router as signup_router

logger = logging.getLogger(__name__)

# Codes for ninja's HttpError statuses that no handler above names.
HTTP_ERROR_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "service_unavailable",
}

api = NinjaAPI(
    title="Payshift signup API",
    version="1.0.0",
    description="Signup and onboarding for Payshift. How to use it, every answer and "
    "error code: docs/api.md in the repository.",
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
    return error_response(request, exc.status, exc.code, exc.detail, exc.headers)


def error_response(
    request: HttpRequest, status: int, code: str, detail, headers: dict[str, str] | None = None
) -> HttpResponse:
    """The one error shape (docs/api.md, Errors): {"detail", "code"}."""
    response = api.create_response(request, {"detail": detail, "code": code}, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


@api.exception_handler(RequestDataTooBig)
def body_too_large(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return error_response(request, 413, "body_too_large", TOO_LARGE)


def _field_error(error: dict) -> dict:
    """ninja's error with the body parameter's name ("payload") out of loc."""
    loc = list(error.get("loc", ()))
    if len(loc) >= 2 and loc[0] == "body" and loc[1] == "payload":
        del loc[1]
    return {**error, "loc": loc}


@api.exception_handler(ValidationError)
def invalid_body(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    """422 with the field errors; an empty body is not JSON at all, so 400."""
    body_errors = any(error.get("loc", [None])[0] == "body" for error in exc.errors)
    if request.method in {"POST", "PUT", "PATCH"} and not request.body.strip() and body_errors:
        return error_response(request, 400, "invalid_json", NOT_JSON)
    errors = [_field_error(error) for error in exc.errors]
    return error_response(request, 422, "validation_error", errors)


@api.exception_handler(Throttled)
def throttled(request: HttpRequest, exc: Throttled) -> HttpResponse:
    wait = math.ceil(exc.wait) if exc.wait else 1
    return api_error(
        request,
        rate_limited(f"Too many requests from your network. Try again in {wait} seconds.", wait),
    )


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    message = str(exc)
    if exc.status_code == 400 and message.startswith("Cannot parse request body"):
        return error_response(request, 400, "invalid_json", NOT_JSON)
    code = HTTP_ERROR_CODES.get(exc.status_code, "error")
    return error_response(request, exc.status_code, code, message)


@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def database_unavailable(request: HttpRequest, exc: DatabaseError) -> HttpResponse:
    """A dropped or unreachable database is an outage, not a bug: 503, no traceback."""
    logger.error("request path=%s outcome=db-unavailable error=%s", request.path, exc)
    return error_response(
        request,
        503,
        "service_unavailable",
        "The service is briefly unavailable. Please retry in a few seconds.",
        {"Retry-After": "5"},
    )


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
from signup.api.auth import router as auth_router  # noqa: E402
from signup.api.me import router as me_router  # noqa: E402
from signup.api.mfa import router as mfa_router  # noqa: E402

api.add_router("/auth", auth_router)
api.add_router("/me/mfa", mfa_router)  # before /me: its own paths
api.add_router("/me", me_router)

# --- JSON 404 with its code (core.middleware does Django's own 404/405) ------
from django.http import Http404  # noqa: E402  (kept here: a block of its own)


@api.exception_handler(Http404)
def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    """A view's 404 (no such object), with the code every /api/ 404 has."""
    return api.create_response(
        request, {"detail": str(exc) or "Not found.", "code": "not_found"}, status=404
    )
