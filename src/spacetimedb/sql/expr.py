"""Typed predicates: what a WHERE / ON clause becomes once names are resolved and literals typed.

A predicate refers to columns as ``(rel, pos)``: the position of a relation in its fragment's FROM list, and
the column's position in that table. Predicates compile to Python functions (``compile_row`` for one
relation, ``compile_rows`` for a tuple of rows indexed by relation) by generating a lambda's source: literal
values never appear in the source, they are bound as names, so any text a user writes stays data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from spacetimedb.sats import AlgebraicType

_PY_OPS = {"=": "==", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
FLIPPED = {"=": "=", "<>": "<>", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


@dataclass(frozen=True, slots=True)
class ColumnRef:
    rel: int
    pos: int
    type: AlgebraicType
    label: str  # `alias.column`, for messages and EXPLAIN

    def key(self) -> str:
        return f"${self.rel}.{self.pos}"


@dataclass(frozen=True, slots=True)
class Const:
    value: Any
    type: AlgebraicType

    def key(self) -> str:
        return f"{self.value!r}:{self.type!r}"


Operand = ColumnRef | Const


@dataclass(frozen=True, slots=True)
class Cmp:
    """``left op right``; when one side is a constant it is always ``right``."""

    op: str
    left: Operand
    right: Operand

    def key(self) -> str:
        return f"({self.left.key()} {self.op} {self.right.key()})"


@dataclass(frozen=True, slots=True)
class BoolColumn:
    """A Bool column used directly as a condition."""

    column: ColumnRef

    def key(self) -> str:
        return self.column.key()


@dataclass(frozen=True, slots=True)
class Truth:
    value: bool

    def key(self) -> str:
        return "TRUE" if self.value else "FALSE"


@dataclass(frozen=True, slots=True)
class Conj:
    items: tuple[Pred, ...]

    def key(self) -> str:
        return "(" + " AND ".join(sorted(item.key() for item in self.items)) + ")"


@dataclass(frozen=True, slots=True)
class Disj:
    items: tuple[Pred, ...]

    def key(self) -> str:
        return "(" + " OR ".join(sorted(item.key() for item in self.items)) + ")"


@dataclass(frozen=True, slots=True)
class Neg:
    item: Pred

    def key(self) -> str:
        return f"NOT {self.item.key()}"


Pred = Cmp | BoolColumn | Truth | Conj | Disj | Neg


# ---- structure --------------------------------------------------------------------------------------------


def relations_of(pred: Pred) -> frozenset[int]:
    """The relations a predicate reads."""
    found: set[int] = set()
    stack: list[Any] = [pred]
    while stack:
        node = stack.pop()
        if isinstance(node, Cmp):
            for side in (node.left, node.right):
                if isinstance(side, ColumnRef):
                    found.add(side.rel)
        elif isinstance(node, BoolColumn):
            found.add(node.column.rel)
        elif isinstance(node, Conj | Disj):
            stack.extend(node.items)
        elif isinstance(node, Neg):
            stack.append(node.item)
    return frozenset(found)


def columns_of(pred: Pred) -> list[ColumnRef]:
    """Every column reference in a predicate."""
    found: list[ColumnRef] = []
    stack: list[Any] = [pred]
    while stack:
        node = stack.pop()
        if isinstance(node, Cmp):
            found.extend(side for side in (node.left, node.right) if isinstance(side, ColumnRef))
        elif isinstance(node, BoolColumn):
            found.append(node.column)
        elif isinstance(node, Conj | Disj):
            stack.extend(node.items)
        elif isinstance(node, Neg):
            stack.append(node.item)
    return found


def remap(pred: Pred, mapping: Mapping[int, int]) -> Pred:
    """The same predicate with relation numbers renamed (used when RLS splices a rule into a query)."""

    def column(c: ColumnRef) -> ColumnRef:
        return ColumnRef(mapping[c.rel], c.pos, c.type, c.label)

    def operand(o: Operand) -> Operand:
        return column(o) if isinstance(o, ColumnRef) else o

    if isinstance(pred, Cmp):
        return Cmp(pred.op, operand(pred.left), operand(pred.right))
    if isinstance(pred, BoolColumn):
        return BoolColumn(column(pred.column))
    if isinstance(pred, Conj):
        return Conj(tuple(remap(item, mapping) for item in pred.items))
    if isinstance(pred, Disj):
        return Disj(tuple(remap(item, mapping) for item in pred.items))
    if isinstance(pred, Neg):
        return Neg(remap(pred.item, mapping))
    return pred


def conjuncts_of(pred: Pred) -> list[Pred]:
    """Split a predicate at its top-level ANDs."""
    if isinstance(pred, Conj):
        out: list[Pred] = []
        for item in pred.items:
            out.extend(conjuncts_of(item))
        return out
    if isinstance(pred, Truth) and pred.value:
        return []
    return [pred]


def column_equality(pred: Pred) -> tuple[ColumnRef, Any] | None:
    """``(column, value)`` when ``pred`` is ``column = constant``."""
    if (
        isinstance(pred, Cmp)
        and pred.op == "="
        and isinstance(pred.left, ColumnRef)
        and isinstance(pred.right, Const)
    ):
        return pred.left, pred.right.value
    return None


def equality_set(pred: Pred) -> tuple[ColumnRef, list[Any]] | None:
    """``(column, values)`` when ``pred`` holds exactly when one column equals one of a few constants:
    ``c = v`` or ``c = v1 OR c = v2 ...`` (same column)."""
    single = column_equality(pred)
    if single is not None:
        return single[0], [single[1]]
    if not isinstance(pred, Disj):
        return None
    column: ColumnRef | None = None
    values: list[Any] = []
    for item in pred.items:
        found = equality_set(item)
        if found is None or (column is not None and (found[0].rel, found[0].pos) != (column.rel, column.pos)):
            return None
        column = found[0]
        values.extend(found[1])
    if column is None:
        return None
    return column, values


def join_equality(pred: Pred) -> tuple[ColumnRef, ColumnRef] | None:
    """The two columns of ``a.x = b.y`` between two different relations."""
    if (
        isinstance(pred, Cmp)
        and pred.op == "="
        and isinstance(pred.left, ColumnRef)
        and isinstance(pred.right, ColumnRef)
        and pred.left.rel != pred.right.rel
    ):
        return pred.left, pred.right
    return None


# ---- code generation -------------------------------------------------------------------------------------


class _Source:
    def __init__(self, single: int | None) -> None:
        # when `single` is a relation number, columns of it read `r[pos]`; otherwise `rs[rel][pos]`
        self.single = single
        self.names: dict[str, Any] = {}

    def const(self, value: Any) -> str:
        name = f"_c{len(self.names)}"
        self.names[name] = value
        return name

    def column(self, c: ColumnRef) -> str:
        if self.single is not None:
            if c.rel != self.single:
                raise ValueError(f"predicate reads relation {c.rel}, compiled for {self.single}")
            return f"r[{c.pos}]"
        return f"rs[{c.rel}][{c.pos}]"

    def operand(self, o: Operand) -> str:
        return self.column(o) if isinstance(o, ColumnRef) else self.const(o.value)

    def pred(self, p: Pred) -> str:
        if isinstance(p, Cmp):
            return f"({self.operand(p.left)} {_PY_OPS[p.op]} {self.operand(p.right)})"
        if isinstance(p, BoolColumn):
            return f"({self.column(p.column)} is True)"
        if isinstance(p, Truth):
            return "True" if p.value else "False"
        if isinstance(p, Conj):
            return "(" + " and ".join(self.pred(item) for item in p.items) + ")"
        if isinstance(p, Disj):
            return "(" + " or ".join(self.pred(item) for item in p.items) + ")"
        if isinstance(p, Neg):
            return f"(not {self.pred(p.item)})"
        raise TypeError(f"not a predicate: {p!r}")


def _compile(preds: list[Pred], single: int | None) -> Callable[[Any], bool]:
    source = _Source(single)
    body = " and ".join(source.pred(p) for p in preds) if preds else "True"
    arg = "r" if single is not None else "rs"
    code = compile(f"lambda {arg}: {body}", "<sql predicate>", "eval")
    # the names must be globals: a lambda made by eval does not close over eval's locals
    return eval(code, {"__builtins__": {}, **source.names})  # type: ignore[no-any-return]  # eval of a lambda: the compiled predicate


def compile_row(preds: list[Pred], rel: int) -> Callable[[tuple[Any, ...]], bool] | None:
    """A function of one row of relation ``rel`` that is true when all ``preds`` hold; None if no preds."""
    return _compile(preds, rel) if preds else None


def compile_rows(preds: list[Pred]) -> Callable[[list[Any]], bool] | None:
    """A function of the rows bound so far (indexed by relation) that is true when all ``preds`` hold."""
    return _compile(preds, None) if preds else None


def describe(pred: Pred) -> str:
    """A readable rendering, for EXPLAIN output."""
    if isinstance(pred, Cmp):
        return f"{_operand_text(pred.left)} {pred.op} {_operand_text(pred.right)}"
    if isinstance(pred, BoolColumn):
        return pred.column.label
    if isinstance(pred, Truth):
        return "TRUE" if pred.value else "FALSE"
    if isinstance(pred, Conj):
        return " AND ".join(
            f"({describe(item)})" if isinstance(item, Disj) else describe(item) for item in pred.items
        )
    if isinstance(pred, Disj):
        return " OR ".join(describe(item) for item in pred.items)
    return f"NOT ({describe(pred.item)})"


def _operand_text(o: Operand) -> str:
    return o.label if isinstance(o, ColumnRef) else repr(o.value)
