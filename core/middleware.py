"""Every answer under /api/ is JSON, including Django's own 404 and 405."""

import json
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

API_PREFIX = "/api/"
CODES = {
    404: ("not_found", "No such path. See /api/v1/docs for the endpoints."),
    405: ("method_not_allowed", "This path does not accept the {method} method."),
}


class ApiJsonErrorsMiddleware:
    """Turns a non-JSON 404/405 under /api/ (an unknown path, a wrong method:
    Django's HTML page or ninja's empty 405) into {"detail", "code"}."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code in CODES
            and request.path.startswith(API_PREFIX)
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            code, detail = CODES[response.status_code]
            body = {"detail": detail.format(method=request.method), "code": code}
            json_response = HttpResponse(
                json.dumps(body), status=response.status_code, content_type="application/json"
            )
            for header in ("Allow", "X-Request-ID"):
                if header in response:
                    json_response[header] = response[header]
            return json_response
        return response
