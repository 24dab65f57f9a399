"""Silk (SILK_ENABLED=1): which requests it records, and what it may keep of them.

Which: the application's, not its static files or metric scrapes, which
would flood Silk's request list.

What: Silk masks SILKY_SENSITIVE_KEYS in request bodies only (and in
headers named exactly like a key); it stores the query string, other
credential headers and an answer's Location in clear (silk 5.6:
RequestModelFactory.query_params never masks). silky_middleware is Silk's
middleware that shows it a masked copy of those while it records (the
view and the client still get the real ones): the value of every query
parameter or header whose name contains a sensitive key, whatever its
case, and of such a parameter inside another one's URL (?next=/x?token=).

Imported by the settings module: nothing from Django or Silk at import time.
"""

import functools
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse, QueryDict

NOT_RECORDED = ("/metrics", "/favicon.ico")
MASK = "********************"  # Silk's own (RequestModelFactory.CLEANSED_SUBSTITUTE)
URL_HEADERS = ("location", "content-location", "referer")  # a query string inside
NESTING = 2  # URLs inside a parameter's URL, masked this deep


def silk_should_intercept(request: "HttpRequest") -> bool:
    from django.conf import settings

    static = "/" + settings.STATIC_URL.lstrip("/")
    return not request.path.startswith((static, *NOT_RECORDED))


@functools.cache
def _pattern(keys: frozenset[str]) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(key) for key in sorted(keys) if key), re.IGNORECASE)


def sensitive(name: str) -> bool:
    """Whether a parameter or header of this name holds a secret (SILKY_SENSITIVE_KEYS)."""
    from django.conf import settings

    keys = frozenset(getattr(settings, "SILKY_SENSITIVE_KEYS", ()))
    return bool(keys) and _pattern(keys).search(name) is not None


def _masked_value(name: str, value: str, depth: int) -> str:
    if sensitive(name):
        return MASK
    if depth > 0 and "?" in value:
        return masked_url(value, depth - 1)
    return value


def masked_url(url: str, depth: int = NESTING) -> str:
    """The URL with the value of each sensitive query parameter masked."""
    if "?" not in url:
        return url
    base, _, rest = url.partition("?")
    query, hash_sign, fragment = rest.partition("#")
    pairs = parse_qsl(query, keep_blank_values=True)
    masked = [(name, _masked_value(name, value, depth)) for name, value in pairs]
    if masked == pairs:
        return url
    return f"{base}?{urlencode(masked)}{hash_sign}{fragment}"


def masked_query(query: "QueryDict") -> "QueryDict":
    masked = query.copy()
    for name, values in query.lists():
        masked.setlist(name, [_masked_value(name, value, NESTING) for value in values])
    return masked


def masked_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    masked = {}
    for name, value in headers:
        if sensitive(name):
            masked[name] = MASK
        elif name.lower() in URL_HEADERS:
            masked[name] = masked_url(value)
        else:
            masked[name] = value
    return masked


def silky_middleware(get_response: Callable[["HttpRequest"], "HttpResponse"]) -> Any:
    """Silk's SilkyMiddleware, recording masked query strings and headers."""
    return _masking_silky_middleware()(get_response)


@functools.cache
def _masking_silky_middleware() -> type:
    from django.utils.datastructures import CaseInsensitiveMapping
    from silk.middleware import SilkyMiddleware

    class MaskingSilkyMiddleware(SilkyMiddleware):
        """Silk reads request.GET and request.headers when it creates its
        record (process_request) and the answer's headers when it finishes
        it (process_response): each sees a masked copy for that call only."""

        def process_request(self, request: "HttpRequest") -> None:
            real = vars(request)
            get, headers = request.GET, request.headers  # cached on the request
            real["GET"] = masked_query(get)
            real["headers"] = CaseInsensitiveMapping(masked_headers(headers.items()))
            try:
                super().process_request(request)
            finally:
                real["GET"], real["headers"] = get, headers

        def process_response(
            self, request: "HttpRequest", response: "HttpResponse"
        ) -> "HttpResponse":
            if not getattr(request, "silk_is_intercepted", False):
                return super().process_response(request, response)
            kept = dict(response.items())
            changed = {k: v for k, v in masked_headers(kept.items()).items() if v != kept[k]}
            for name, value in changed.items():
                response[name] = value
            try:
                return super().process_response(request, response)
            finally:
                for name in changed:
                    response[name] = kept[name]

    return MaskingSilkyMiddleware
