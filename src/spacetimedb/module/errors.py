"""Errors of the module layer: loading and validating modules, calling reducers, migrating schemas."""

from __future__ import annotations

from typing import Any


class ModuleError(Exception):
    """A module program could not be loaded: a syntax or import error, or an invalid declaration.

    The message names the offending declaration (and, for import errors, the file and line); ``problems``
    lists every problem found when validation found several.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems if problems is not None else [message]


class NoSuchReducerError(LookupError):
    def __init__(self, name: str, kind: str = "reducer") -> None:
        super().__init__(f"no such {kind}: `{name}`")
        self.name = name


class ReducerArgsError(ValueError):
    """Reducer arguments that do not decode against the reducer's parameter types."""

    def __init__(
        self, reducer: str, message: str, argument: str | None = None, kind: str = "reducer"
    ) -> None:
        where = f", argument `{argument}`" if argument is not None else ""
        super().__init__(f"invalid arguments for {kind} `{reducer}`{where}: {message}")
        self.reducer = reducer
        self.argument = argument


class ColumnValueError(ValueError):
    """A row value that does not fit its column's type (wrong kind, or out of range)."""

    def __init__(self, table: str, column: str, value: Any, reason: str) -> None:
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"table `{table}`, column `{column}`: invalid value {shown}: {reason}")
        self.table = table
        self.column = column
        self.value = value


class NoTransactionError(RuntimeError):
    """A table handle was used outside of a reducer call."""


class MigrationError(Exception):
    """A migration plan is not automatic, or failed while being applied (the transaction must be rolled back)."""
