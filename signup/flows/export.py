"""The data export (GDPR right of access): everything the service holds about
a user, as one JSON document, built a piece at a time.

{"profile", "wallet", "notifications", "sessions"}, each part as the API's
own reads show it (GET /me, /me/wallet, /me/notifications, /me/sessions):
the same fields and formats, and never a secret (no password hash, no token
or its hash). Counted first (EXPORTS_PER_HOUR per user, signup.limits); then
the wallet is read before the answer starts, so a database that is down is
still a clean 503, and the first piece (profile and wallet: what a client
waits for before the download starts) goes out. The notifications, then
the live sessions, are read while the answer streams, in keyset pages of
PAGE over the feed's index (messaging.feed): memory stays bounded by a
page, and the statements are 1 (token) + 1 (wallet) + max(1, ceil(n /
PAGE)) (notifications) + 1 (sessions), whatever n is.
"""

import json
import logging
from collections.abc import Iterator
from functools import partial

from django.core.serializers.json import DjangoJSONEncoder

from core.errors import rate_limited
from messaging import feed
from signup.limits import export_reserve
from signup.models import User
from signup.selectors import user_sessions, user_wallet
from signup.shapes import notification_shape, profile_shape, session_shape, wallet_shape

logger = logging.getLogger(__name__)

PAGE = 500  # notifications per query (and per streamed piece)
# As the API's renderer writes values (ninja's encoder is a DjangoJSONEncoder):
# a datetime in ISO 8601 to the millisecond, UTC as Z; a Decimal as a string.
dumps = partial(json.dumps, cls=DjangoJSONEncoder)


def account_export(*, user: User) -> Iterator[bytes]:
    """The user's export as pieces of one JSON document (UTF-8 bytes).

    429 rate_limited past EXPORTS_PER_HOUR, before anything is read. What is
    read here happens now; the returned iterator reads the further pages.
    """
    hold = export_reserve(user_id=user.pk)
    if not hold.allowed:
        raise rate_limited(
            "Too many data exports for this account: try again later.", hold.retry_after
        )
    wallet = wallet_shape(user_wallet(user_id=user.pk))  # the database answers, or 503
    logger.info("export user=%s", user.pk)
    head = (
        f'{{"profile": {dumps(profile_shape(user))}, "wallet": {dumps(wallet)}, "notifications": ['
    )
    return _stream(user_id=user.pk, head=head)


def _stream(*, user_id: int, head: str) -> Iterator[bytes]:
    """The head at once (the download starts), one piece per page of
    notifications, then the sessions."""
    try:
        yield head.encode()
        page, following = feed.notification_feed(user_id=user_id, limit=PAGE)
        if page:
            yield _items(page).encode()
        while following is not None:
            page, following = feed.notification_feed(user_id=user_id, limit=PAGE, cursor=following)
            if page:  # empty only if rows went away since the last page
                yield f", {_items(page)}".encode()
        sessions = [session_shape(token) for token in user_sessions(user_id=user_id)]
        yield f'], "sessions": {dumps(sessions)}}}'.encode()
    except Exception:
        # The 200 is on its way: the client sees a cut-off document.
        logger.exception("export user=%s state=aborted", user_id)
        raise


def _items(page: list) -> str:
    """A page of notifications as the inside of a JSON array (one dumps)."""
    return dumps([notification_shape(n) for n in page])[1:-1]
