"""Raw SQL's few helpers: what the database can do in one statement, quoted names from _meta.

Used where the ORM cannot say a statement (an UPDATE inside a WITH, an
INSERT ... SELECT): the names come from the models' _meta, quoted; the
values are always bound.
"""

from typing import cast

from django.db import connection
from django.db.models import Field, Model


def ctes_write() -> bool:
    """Whether a WITH clause may hold an UPDATE (PostgreSQL); SQLite's cannot.

    Where it can, two writes share one statement (issue 23: each statement is
    a round trip and an ORM build); elsewhere they run one after the other.
    """
    return connection.vendor == "postgresql"


def field_of(model: type[Model], name: str) -> Field:
    """model's concrete field name (never a reverse relation)."""
    return cast(Field, model._meta.get_field(name))


def quoted(field: Field) -> str:
    """field's column, quoted."""
    return connection.ops.quote_name(cast(str, field.column))


def column(model: type[Model], name: str) -> str:
    """The quoted column of model's field name."""
    return quoted(field_of(model, name))


def columns(fields: list[Field], table: str) -> str:
    """The fields' columns, qualified by table, quoted: a SELECT or RETURNING list."""
    table = connection.ops.quote_name(table)
    return ", ".join(f"{table}.{quoted(field)}" for field in fields)
