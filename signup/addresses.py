"""The one canonical form of an email address (docs/api.md, "Addresses").

The database decides which spellings are one address: the account's
identity is the unique index on LOWER(email). Python's str.lower() differs
from SQL LOWER() on some letters (U+0130 İ becomes "i̇" in Python, "i" in
PostgreSQL; SQLite lowers ASCII only), so a key computed in Python gave one
account several limit rows. Every per-address key and lookup therefore goes
through address_key(): the database computes it, in the same statement.
"""

from django.db.models import Func, Value
from django.db.models.functions import Lower


def address_key(email: str) -> Func:
    """SQL expression for email's canonical form; use it for lookups and as
    the value of a per-address key column (insert and filter alike)."""
    return Lower(Value(email))


def address_canonical(email: str) -> str:
    """address_key(email) as a string, computed by the database (one query);
    for keys kept outside it, such as django-axes' per-account count."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT LOWER(%s)", [email])
        return cursor.fetchone()[0]


def admin_login_username(request, credentials: dict | None = None) -> str | None:
    """AXES_USERNAME_CALLABLE: the admin login form's username, canonical, so
    that case variants of one address share one failed-login count."""
    if credentials is not None:
        username = credentials.get("username")
    else:
        username = getattr(request, "POST", {}).get("username")
    return address_canonical(username) if username else None
