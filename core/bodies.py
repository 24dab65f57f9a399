"""Request bodies under /api/: JSON only, sized, chunked bodies read properly.

First in MIDDLEWARE (before Silk), so a body the API refuses never reaches
anything that records or parses it:

- 415 unsupported_media_type for a body-carrying method whose Content-Type is
  not application/json (a charset parameter is fine). ninja parses any body
  as JSON whatever its type, which let a cross-origin "simple" POST (form,
  text/plain) in without a preflight, and made Silk store a JSON body
  parsed as a form, unmasked (issue 8, points 4 and 5).
- 413 body_too_large when Content-Length, or the bytes of a chunked body,
  exceed DATA_UPLOAD_MAX_MEMORY_SIZE.
- A chunked body (no Content-Length; gunicorn de-chunks wsgi.input) is read
  here, at most the limit plus one byte, and handed on with its length, so
  Django sees it (it reads Content-Length bytes: none, without this).
"""

import io

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

API_PREFIX = "/api/"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
JSON_TYPE = "application/json"
READ_SIZE = 64 * 1024

NOT_JSON = "Request body is not valid JSON. Send a JSON object with Content-Type: application/json."
NOT_JSON_TYPE = (
    "Send the body as JSON with Content-Type: application/json (a charset parameter is fine)."
)
TOO_LARGE = "Request body is too large. Send at most 64 KiB of JSON."


def _error(status: int, code: str, detail: str) -> HttpResponse:
    return JsonResponse({"detail": detail, "code": code}, status=status)


def _is_json(request: HttpRequest) -> bool:
    media_type = request.META.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
    return media_type == JSON_TYPE


def _read_chunked(request: HttpRequest, limit: int) -> bytes | None:
    """The whole de-chunked body, or None when it is longer than limit."""
    stream = request.META.get("wsgi.input")
    if stream is None:
        return b""
    parts: list[bytes] = []
    size = 0
    while True:
        part = stream.read(min(READ_SIZE, limit + 1 - size))
        if not part:
            return b"".join(parts)
        parts.append(part)
        size += len(part)
        if size > limit:
            return None


class ApiBodyMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method in BODY_METHODS and request.path.startswith(API_PREFIX):
            refused = self._check(request)
            if refused is not None:
                return refused
        return self.get_response(request)

    def _check(self, request: HttpRequest) -> HttpResponse | None:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
        length = request.META.get("CONTENT_LENGTH") or ""
        if chunked and not length:
            body = _read_chunked(request, limit)
            if body is None:
                return _error(413, "body_too_large", TOO_LARGE)
            request._stream = io.BytesIO(body)  # what Django reads request.body from
            request.META["CONTENT_LENGTH"] = str(len(body))
            length = str(len(body))
        if length.isdigit() and int(length) > limit:
            return _error(413, "body_too_large", TOO_LARGE)
        # Only a body has a media type to refuse: a body-less POST (logout,
        # mark read) passes whatever Content-Type a client library sends.
        has_body = length.isdigit() and int(length) > 0
        if has_body and not _is_json(request):
            return _error(415, "unsupported_media_type", NOT_JSON_TYPE)
        return None
