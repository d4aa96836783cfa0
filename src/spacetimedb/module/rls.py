"""Row-level security rules: which table a rule filters.

A rule is ``SELECT <t>.* FROM <t> [AS a] [JOIN ...] WHERE ...`` (or ``SELECT * FROM <t> WHERE ...`` without
joins). Checking the query itself is the SQL layer's job when the rule is installed; the module layer only
needs to know the table whose rows it returns, to validate that the table exists and is public.
"""

from __future__ import annotations

import re

_SELECT = re.compile(r"\s*select\s+(?:(\w+)\s*\.\s*)?\*\s+from\s+(.*)$", re.IGNORECASE | re.DOTALL)
_RELATION = r"(\w+)(?:\s+(?:as\s+)?(\w+))?"
_FIRST = re.compile(_RELATION, re.IGNORECASE)
_JOIN = re.compile(r"\bjoin\s+" + _RELATION, re.IGNORECASE)
_NOT_ALIASES = frozenset(
    {"where", "join", "inner", "left", "right", "outer", "cross", "on", "group", "order", "limit", "as"}
)


class RlsSyntaxError(ValueError):
    pass


def _relation(match: re.Match[str]) -> tuple[str, str]:
    table, alias = match.group(1), match.group(2)
    if alias is None or alias.lower() in _NOT_ALIASES:
        alias = table
    return table, alias


def rls_table(sql: str) -> str:
    """The table whose rows ``sql`` returns; raises ``RlsSyntaxError`` when the rule has another shape."""
    match = _SELECT.match(sql)
    if match is None:
        raise RlsSyntaxError(
            f"a row-level security rule must look like `SELECT t.* FROM t WHERE ...`, got {sql!r}"
        )
    qualifier, rest = match.group(1), match.group(2)
    first = _FIRST.match(rest)
    if first is None:
        raise RlsSyntaxError(f"no table after FROM in {sql!r}")
    relations = [_relation(first)] + [_relation(m) for m in _JOIN.finditer(rest)]
    if qualifier is None:
        if len(relations) > 1:
            raise RlsSyntaxError(
                f"a rule with a JOIN must select one table's rows (`SELECT t.* ...`): {sql!r}"
            )
        return relations[0][0]
    for table, alias in relations:
        if alias == qualifier:
            return table
    raise RlsSyntaxError(f"`{qualifier}.*` does not name a table of the FROM clause in {sql!r}")
