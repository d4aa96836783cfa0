"""Errors raised by the datastore."""

from __future__ import annotations

from typing import Any


class DatastoreError(Exception):
    """Base class of datastore errors."""


class SchemaError(DatastoreError):
    """A schema definition or change is invalid."""


class NoSuchTableError(DatastoreError):
    def __init__(self, table: int | str) -> None:
        super().__init__(f"no such table: {table}")
        self.table = table


class NoSuchIndexError(DatastoreError):
    def __init__(self, index: int | str) -> None:
        super().__init__(f"no such index: {index}")
        self.index = index


class NoSuchRowError(DatastoreError):
    """An update found no row with the new row's key."""


class IndexNotUniqueError(DatastoreError):
    """An operation that needs a unique index was given a non-unique one."""


class UniqueConstraintViolation(DatastoreError):
    """An insert or update would give two rows the same value in a unique column set."""

    def __init__(self, table: str, columns: tuple[str, ...], value: Any) -> None:
        cols = ", ".join(columns)
        super().__init__(f"duplicate key value {value!r} violates unique constraint on `{table}` ({cols})")
        self.table = table
        self.columns = columns
        self.value = value


class SequenceExhaustedError(DatastoreError):
    """An auto-increment sequence passed its bounds."""


class TransactionClosedError(DatastoreError):
    """The transaction was already committed or rolled back."""


class ReadOnlyTransactionError(DatastoreError):
    """A write was attempted in a read-only transaction."""
