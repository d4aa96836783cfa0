"""The syntax tree the parser produces: names are still strings and literals still text.

Every node renders back to SQL (``to_sql``) in one canonical spelling (upper-case keywords, quoted names), which
is what error messages quote.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PLAIN_NAME = re.compile(r"[a-z_][a-z0-9_]*")


def quote(name: str) -> str:
    if _PLAIN_NAME.fullmatch(name) and name.upper() not in KEYWORDS:
        return name
    return '"' + name.replace('"', '""') + '"'


KEYWORDS = frozenset(
    {
        "ALL", "AND", "AS", "ASC", "BY", "CROSS", "DELETE", "DESC", "DISTINCT", "EXCEPT", "FALSE",
        "FROM", "FULL", "GROUP", "HAVING", "INNER", "INSERT", "INTERSECT", "INTO", "IS", "JOIN", "LEFT", "LIMIT",
        "NATURAL", "NOT", "NULL", "OFFSET", "ON", "OR", "ORDER", "OUTER", "RIGHT", "SELECT", "SET", "SHOW",
        "TO", "TRUE", "UNION", "UPDATE", "USING", "VALUES", "WHERE", "WITH",
    }
)  # fmt: skip


# ---- expressions -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Literal:
    """``kind``: ``number`` | ``string`` | ``hex`` | ``bool`` | ``null`` | ``param`` (``$n``: ``text`` is n) |
    ``text`` (a parameter's value given as text, see ``params``); ``text`` as written (sign included)."""

    kind: str
    text: str

    def to_sql(self) -> str:
        if self.kind == "string":
            return "'" + self.text.replace("'", "''") + "'"
        if self.kind == "hex":
            return "0x" + self.text
        if self.kind == "bool":
            return self.text.upper()
        if self.kind == "null":
            return "NULL"
        if self.kind == "param":
            return "$" + self.text
        if self.kind == "text":
            return "'" + self.text.replace("'", "''") + "'"
        return self.text


@dataclass(frozen=True, slots=True)
class Param:
    """A parameter such as ``:sender``."""

    name: str

    def to_sql(self) -> str:
        return ":" + self.name


@dataclass(frozen=True, slots=True)
class Column:
    """A column reference, qualified (``t.c``) or not (``c``)."""

    table: str | None
    name: str

    def to_sql(self) -> str:
        return f"{quote(self.table)}.{quote(self.name)}" if self.table is not None else quote(self.name)


Operand = Literal | Param | Column


@dataclass(frozen=True, slots=True)
class Compare:
    op: str  # = <> < <= > >=  (!= is normalised to <>)
    left: Operand
    right: Operand

    def to_sql(self) -> str:
        return f"{self.left.to_sql()} {self.op} {self.right.to_sql()}"


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Expr, ...]

    def to_sql(self) -> str:
        return " AND ".join(_nested(item, Or) for item in self.items)


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Expr, ...]

    def to_sql(self) -> str:
        return " OR ".join(item.to_sql() for item in self.items)


@dataclass(frozen=True, slots=True)
class Not:
    item: Expr

    def to_sql(self) -> str:
        inner = self.item.to_sql()
        return f"NOT ({inner})" if isinstance(self.item, And | Or) else f"NOT {inner}"


Expr = Compare | And | Or | Not | Literal | Param | Column


def _nested(item: Expr, parenthesize: type) -> str:
    text = item.to_sql()
    return f"({text})" if isinstance(item, parenthesize) else text


# ---- SELECT ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TableRef:
    name: str
    alias: str | None = None

    @property
    def var(self) -> str:
        """The name the rest of the query uses for this table."""
        return self.alias if self.alias is not None else self.name

    def to_sql(self) -> str:
        return quote(self.name) + (f" AS {quote(self.alias)}" if self.alias is not None else "")


@dataclass(frozen=True, slots=True)
class Join:
    table: TableRef
    on: Expr | None

    def to_sql(self) -> str:
        return f"JOIN {self.table.to_sql()}" + (f" ON {self.on.to_sql()}" if self.on is not None else "")


@dataclass(frozen=True, slots=True)
class Star:
    """``*`` (table None) or ``t.*``."""

    table: str | None = None

    def to_sql(self) -> str:
        return "*" if self.table is None else f"{quote(self.table)}.*"


@dataclass(frozen=True, slots=True)
class ProjectColumn:
    column: Column
    alias: str | None

    def to_sql(self) -> str:
        return self.column.to_sql() + (f" AS {quote(self.alias)}" if self.alias is not None else "")


@dataclass(frozen=True, slots=True)
class Columns:
    items: tuple[ProjectColumn, ...]

    def to_sql(self) -> str:
        return ", ".join(item.to_sql() for item in self.items)


@dataclass(frozen=True, slots=True)
class Count:
    """``COUNT(*) [AS alias]``."""

    alias: str | None

    def to_sql(self) -> str:
        return "COUNT(*)" + (f" AS {quote(self.alias)}" if self.alias is not None else "")


Projection = Star | Columns | Count


@dataclass(frozen=True, slots=True)
class OrderItem:
    column: Column
    descending: bool

    def to_sql(self) -> str:
        return self.column.to_sql() + (" DESC" if self.descending else "")


@dataclass(frozen=True, slots=True)
class Select:
    projection: Projection
    table: TableRef
    joins: tuple[Join, ...] = ()
    where: Expr | None = None
    order_by: tuple[OrderItem, ...] = ()
    limit: Literal | None = None
    offset: Literal | None = None

    def to_sql(self) -> str:
        parts = [f"SELECT {self.projection.to_sql()} FROM {self.table.to_sql()}"]
        parts.extend(join.to_sql() for join in self.joins)
        if self.where is not None:
            parts.append(f"WHERE {self.where.to_sql()}")
        if self.order_by:
            parts.append("ORDER BY " + ", ".join(item.to_sql() for item in self.order_by))
        if self.limit is not None:
            parts.append(f"LIMIT {self.limit.to_sql()}")
        if self.offset is not None:
            parts.append(f"OFFSET {self.offset.to_sql()}")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class Union:
    """``s1 UNION [ALL] s2 ...``: whole rows of one table (``distinct``: UNION, else UNION ALL)."""

    selects: tuple[Select, ...]
    distinct: bool

    def to_sql(self) -> str:
        joiner = " UNION " if self.distinct else " UNION ALL "
        return joiner.join(select.to_sql() for select in self.selects)


# ---- DML and variables -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Insert:
    table: str
    columns: tuple[str, ...] | None
    rows: tuple[tuple[Literal, ...], ...]

    def to_sql(self) -> str:
        cols = f" ({', '.join(quote(c) for c in self.columns)})" if self.columns is not None else ""
        values = ", ".join("(" + ", ".join(v.to_sql() for v in row) + ")" for row in self.rows)
        return f"INSERT INTO {quote(self.table)}{cols} VALUES {values}"


@dataclass(frozen=True, slots=True)
class Assignment:
    column: str
    value: Literal

    def to_sql(self) -> str:
        return f"{quote(self.column)} = {self.value.to_sql()}"


@dataclass(frozen=True, slots=True)
class Update:
    table: str
    assignments: tuple[Assignment, ...]
    where: Expr | None

    def to_sql(self) -> str:
        sets = ", ".join(a.to_sql() for a in self.assignments)
        where = f" WHERE {self.where.to_sql()}" if self.where is not None else ""
        return f"UPDATE {quote(self.table)} SET {sets}{where}"


@dataclass(frozen=True, slots=True)
class Delete:
    table: str
    where: Expr | None

    def to_sql(self) -> str:
        where = f" WHERE {self.where.to_sql()}" if self.where is not None else ""
        return f"DELETE FROM {quote(self.table)}{where}"


@dataclass(frozen=True, slots=True)
class SetVar:
    name: str
    value: Literal

    def to_sql(self) -> str:
        return f"SET {quote(self.name)} = {self.value.to_sql()}"


@dataclass(frozen=True, slots=True)
class ShowVar:
    name: str

    def to_sql(self) -> str:
        return f"SHOW {quote(self.name)}"


Statement = Select | Union | Insert | Update | Delete | SetVar | ShowVar
