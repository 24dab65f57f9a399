"""API errors with a stable machine-readable code (docs/api.md, Errors).

Every error body is {"detail": "<for people>", "code": "<for programs>"}.
Raise ApiError from a view or a service the API calls; core.api renders it.
"""


class ApiError(Exception):
    """An answer that is not a success: status, stable code, human detail."""

    def __init__(
        self, status: int, code: str, detail: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}

    def body(self) -> dict[str, str]:
        return {"detail": self.detail, "code": self.code}
