"""Which requests Silk records (SILK_ENABLED=1): the application's, not its
static files or metric scrapes, which would flood Silk's request list.

Imported by the settings module: nothing from Django at import time.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.http import HttpRequest

NOT_RECORDED = ("/metrics", "/favicon.ico")


def silk_should_intercept(request: "HttpRequest") -> bool:
    from django.conf import settings

    static = "/" + settings.STATIC_URL.lstrip("/")
    return not request.path.startswith((static, *NOT_RECORDED))
