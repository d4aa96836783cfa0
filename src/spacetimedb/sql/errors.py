"""Errors of the SQL layer. Every failure caused by the text of a statement is a ``SqlError``."""

from __future__ import annotations


class SqlError(Exception):
    """Base class: the message is meant for the person who wrote the query."""


class SqlSyntaxError(SqlError):
    """The text is not a statement of the dialect."""


class SqlUnsupportedError(SqlError):
    """Valid SQL, but a feature this dialect (or this context, e.g. subscriptions) does not support."""


class SqlNameError(SqlError):
    """A table, column or alias that does not resolve."""


class SqlTypeError(SqlError):
    """A literal that does not fit its column, mismatched operand types, an operator a type lacks."""


class SqlPermissionError(SqlError):
    """The caller may not do this (DML without ownership, writes to system tables)."""


class SqlLimitError(SqlError):
    """A size bound was exceeded: query text, nesting depth, or the row limit."""


class SqlTimeoutError(SqlLimitError):
    """The statement ran past its time budget, or was cancelled because nobody waits for its answer."""


class SqlExecutionError(SqlError):
    """The statement was valid but failed while running (e.g. a unique constraint violation)."""
