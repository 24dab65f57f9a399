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
