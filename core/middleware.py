"""Every answer under /api/ is JSON, including Django's own 404, 405 and 500;
X-Forwarded-Proto is believed only from a trusted proxy; and the admin's
browser middleware is left out of /api/ requests."""

import json
from collections.abc import Callable

from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin

from core.throttles import trusted_proxy

API_PREFIX = "/api/"
CODES = {
    400: ("bad_request", "The request could not be understood."),
    403: ("forbidden", "This request is not allowed."),
    404: ("not_found", "No such path. See /api/v1/docs for the endpoints."),
    405: ("method_not_allowed", "This path does not accept the {method} method."),
    500: ("server_error", "Something went wrong on our side. Please retry later."),
}


class ApiJsonErrorsMiddleware:
    """Turns a non-JSON error under /api/ (an unknown path or a wrong method:
    Django's HTML page, ninja's empty 405; a bad Host header; a crash) into
    {"detail", "code"}. The API's own errors are JSON already and pass through."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and request.path.startswith(API_PREFIX)
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            code, detail = CODES.get(response.status_code, ("error", "The request failed."))
            body = {"detail": detail.format(method=request.method), "code": code}
            json_response = HttpResponse(
                json.dumps(body), status=response.status_code, content_type="application/json"
            )
            for header in ("Allow", "X-Request-ID"):
                if header in response:
                    json_response[header] = response[header]
            return json_response
        return response


class ForwardedProtoFromProxiesMiddleware:
    """Drop X-Forwarded-Proto unless the peer is a trusted proxy (TRUSTED_PROXY_IPS).

    Django's SECURE_PROXY_SSL_HEADER (set with TRUSTED_PROXY_COUNT) believes
    the header from anyone: a client that reaches gunicorn directly could
    make a plain-HTTP request count as HTTPS (no SSL redirect, secure-only
    cookies set over HTTP). First in MIDDLEWARE, before SecurityMiddleware.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "HTTP_X_FORWARDED_PROTO" in request.META and not trusted_proxy(
            request.META.get("REMOTE_ADDR", "")
        ):
            del request.META["HTTP_X_FORWARDED_PROTO"]
        return self.get_response(request)


class _BrowserOnly(MiddlewareMixin):
    """Skipped for /api/ requests: what only the admin's pages (and Silk's) use.

    The JSON API authenticates with bearer tokens (signup.api.bearer sets
    request.user) and never shows a message: for it these built a lazy user
    and a message store (a cookie and a session backend) on every request
    for nothing. The subclasses keep the admin's system checks (admin.E408,
    E409) passing. Session and CSRF stay Django's own, by name: Silk's
    start-up check and `check --deploy` (security.W003) look for those names.
    """

    def __call__(self, request: HttpRequest):
        if request.path_info.startswith(API_PREFIX):
            return self.get_response(request)
        return super().__call__(request)


class BrowserAuthenticationMiddleware(_BrowserOnly, AuthenticationMiddleware):
    pass


class BrowserMessageMiddleware(_BrowserOnly, MessageMiddleware):
    pass
