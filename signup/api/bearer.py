"""Bearer authentication for the authenticated endpoints (ninja's HttpBearer).

Every refusal is the documented 401 with WWW-Authenticate: Bearer, raised as
ApiError: ninja's own AuthenticationError would be a bare 401 without the
header when the Authorization header is missing or not "Bearer ...".
"""

from django.http import HttpRequest
from ninja.security import HttpBearer

from core.errors import ApiError
from signup.models import AccessToken
from signup.tokens import token_authenticate


def not_authenticated(detail: str) -> ApiError:
    return ApiError(401, "not_authenticated", detail, headers={"WWW-Authenticate": "Bearer"})


class BearerAuth(HttpBearer):
    def __call__(self, request: HttpRequest) -> AccessToken:
        token = super().__call__(request)
        if token is None:
            raise not_authenticated(
                "Log in first: send Authorization: Bearer <access_token> "
                "(from POST /api/v1/auth/login)."
            )
        return token

    def authenticate(self, request: HttpRequest, token: str) -> AccessToken:
        """One indexed query: the token's row with its user and profile."""
        found = token_authenticate(raw=token.strip())
        if found is None:
            raise not_authenticated(
                "The access token is invalid, expired or revoked. Log in again."
            )
        request.user = found.user
        return found


bearer = BearerAuth()
