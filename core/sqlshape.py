"""The shape of an SQL statement: the statement with its values taken out.

An N+1 is one shape run over and over with different values. Silk records
statements with their parameters pasted in, unquoted (`... "id" = 7`,
`... "email" = ada@example.com`), so values are recognised by elimination:
Django writes identifiers double-quoted and SQL words in capitals; every
other token is a value. Runs of values, IN-lists and VALUES rows collapse to
one `?`, so lists of any length have one shape.
"""

import re

_STRING = re.compile(r"'(?:[^']|'')*'")
_CAST = re.compile(r"::(\w+(?:\[\])?)")
_SAVEPOINT = re.compile(r'"s\d+_x\d+"')
_TOKEN = re.compile(r'(?:"[^"]*"\.?)+|[(),]|::\w+(?:\[\])?|[^\s(),]+')
_SQL_WORD = re.compile(r"[A-Z_][A-Z0-9_]*")
_OPERATOR = re.compile(r"(?:=|<>|!=|<=|>=|<|>|\*|\+|-|/|%|\|\||@>|<@)")
_VALUE_RUN = re.compile(r"\?(?: \?)+")
_VALUE_LIST = re.compile(r"\? , \?")
_ROW_LIST = re.compile(r"\( \? \)(?: , \( \? \))+")


def _keep(word: str) -> bool:
    """Identifiers, punctuation, casts, SQL words and operators; not values."""
    return (
        word.startswith(('"', "::"))
        or word in {"(", ")", ","}
        or bool(_SQL_WORD.fullmatch(word) or _OPERATOR.fullmatch(word))
    )


def sql_shape(sql: str) -> str:
    """`SELECT ... WHERE "u"."id" = 7 LIMIT 21` -> `SELECT ... WHERE "u"."id" = ? LIMIT ?`."""
    text = _SAVEPOINT.sub('"s?"', _STRING.sub(" ? ", sql))
    text = _CAST.sub(r" ::\1 ", text)
    words = [word if _keep(word) else "?" for word in _TOKEN.findall(text)]
    shape = _VALUE_RUN.sub("?", " ".join(words))
    while (collapsed := _VALUE_LIST.sub("?", shape)) != shape:
        shape = collapsed
    return _ROW_LIST.sub("( ? )", shape)
