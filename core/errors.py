"""API errors with a stable machine-readable code (docs/api.md, Errors).

Every error body is {"detail": "<for people>", "code": "<for programs>"};
a 422 carries a list of field errors as its detail.
Raise ApiError from a view or a service the API calls; core.api renders it.
"""


class ApiError(Exception):
    """An answer that is not a success: status, stable code, human detail."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str | list[dict],
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(str(detail))
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}


def rate_limited(detail: str, retry_after: int, code: str = "rate_limited") -> ApiError:
    """The one way to build a 429: its code, a message, and Retry-After (at least 1 s)."""
    return ApiError(429, code, detail, headers={"Retry-After": str(max(1, retry_after))})
