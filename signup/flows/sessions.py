"""Sessions: a signed-in user sees their tokens and ends them (logout scopes,
one session by id). Each is one UPDATE."""

import logging
from typing import Literal

from core.errors import ApiError
from signup.models import AccessToken
from signup.tokens import token_revoke, user_token_revoke, user_tokens_revoke

logger = logging.getLogger(__name__)

Scope = Literal["current", "others", "all"]


def sessions_end(*, token: AccessToken, scope: Scope = "current") -> None:
    """Log out: this token (current), every other one of the user (others), or all."""
    if scope == "current":
        token_revoke(token=token)
    else:
        user_tokens_revoke(user=token.user, keep=token if scope == "others" else None)
    logger.info("logout user=%s scope=%s", token.user_id, scope)


def session_end(*, token: AccessToken, session_id: int) -> None:
    """End one of the user's live sessions (404 for any other id: not theirs,
    ended, or no such session, one answer)."""
    if not user_token_revoke(user=token.user, token_id=session_id):
        raise ApiError(404, "not_found", "No such session.")
    logger.info("session-end user=%s session=%s", token.user_id, session_id)
