"""Positional parameters (``$1``, ``$2``, ...): their values when a statement runs, their types when it is described.

A parameter may stand wherever a literal may (a comparison's operand, an INSERT value, an assignment, LIMIT). Its
type is the type of what it meets: the column it is compared with or assigned to. A value arrives as a literal
(``ast.Literal``) whose kind says how it was written: ``number``, ``string``, ``hex``, ``bool`` and ``null`` as in
SQL text, or ``text``, which is read the way a literal of the parameter's type is written (``42`` for a number,
``t``/``true`` for a bool, ``\\x00ff`` or ``00ff`` for bytes, any text for a string or a timestamp).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from spacetimedb.sats import U8, AlgebraicType, ArrayType, PrimitiveType, option_inner, special_kind

from . import ast
from .errors import SqlNameError, SqlTypeError
from .literals import literal_value, type_name

MAX_PARAMS = 65_535  # what the PostgreSQL protocol can number

_TRUE = {"t", "true", "y", "yes", "on", "1"}
_FALSE = {"f", "false", "n", "no", "off", "0"}


class Bindings:
    """The parameters of one statement: ``values`` to run it, or None to describe it (then ``types`` collects
    the type each parameter needs, and the compiled plan holds placeholders and must not run)."""

    __slots__ = ("types", "values")

    def __init__(self, values: Sequence[ast.Literal] | None = None) -> None:
        self.values = values
        self.types: dict[int, AlgebraicType] = {}

    @property
    def describing(self) -> bool:
        return self.values is None

    def value(self, lit: ast.Literal, ty: AlgebraicType, label: str | None) -> Any:
        """The value of ``lit`` (a literal or a parameter) at type ``ty``."""
        if lit.kind != "param":
            return literal_value(lit, ty, label)
        index = int(lit.text)
        self._note_type(index, ty)
        if self.values is None:
            return 0  # a placeholder: a described plan never runs
        if not self.values:
            # a subscription, /sql, a simple query: upstream supports no parameters at all and says so
            raise SqlNameError(
                f"there is no parameter ${index}: parameters are unsupported here "
                "(only PostgreSQL's extended query protocol binds them)"
            )
        if index > len(self.values):
            raise SqlNameError(f"there is no parameter ${index}")
        given = self.values[index - 1]
        if given.kind == "param":
            raise SqlTypeError(f"The value of parameter ${index} cannot be another parameter")
        return literal_value(retyped(given, ty), ty, label)

    def _note_type(self, index: int, ty: AlgebraicType) -> None:
        if not 1 <= index <= MAX_PARAMS:
            raise SqlNameError(f"there is no parameter ${index}")
        known = self.types.setdefault(index, ty)
        if known != ty:
            raise SqlTypeError(
                f"Parameter ${index} is used both as `{type_name(known)}` and as `{type_name(ty)}`"
            )

    def ordered_types(self) -> list[AlgebraicType]:
        """The parameters' types, ``$1`` first; every parameter up to the highest must be used."""
        count = max(self.types, default=0)
        missing = [i for i in range(1, count + 1) if i not in self.types]
        if missing:
            raise SqlTypeError(f"could not determine the data type of parameter ${missing[0]}")
        return [self.types[i] for i in range(1, count + 1)]


def retyped(lit: ast.Literal, ty: AlgebraicType) -> ast.Literal:
    """A ``text`` literal as the literal of ``ty`` it spells; other literals as they are."""
    if lit.kind != "text":
        return lit
    inner = option_inner(ty)
    if inner is not None:
        return retyped(lit, inner)
    text = lit.text
    if isinstance(ty, PrimitiveType):
        if ty.kind == "Bool":
            lowered = text.strip().lower()
            if lowered in _TRUE or lowered in _FALSE:
                return ast.Literal("bool", "true" if lowered in _TRUE else "false")
            return ast.Literal("string", text)  # refused by the type check, naming the value
        if ty.kind == "String":
            return ast.Literal("string", text)
        return ast.Literal("number", text.strip())
    if ty == ArrayType(U8) or special_kind(ty) in ("identity", "connection_id"):
        digits = text.strip()
        for prefix in ("\\x", "0x", "0X"):
            digits = digits.removeprefix(prefix)
        return ast.Literal("hex", digits)
    return ast.Literal("string", text)
