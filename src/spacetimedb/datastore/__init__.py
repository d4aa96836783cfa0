"""The in-memory relational engine: tables, indexes, sequences, constraints, system tables, transactions.

Owns: ``Datastore`` (all tables of one database), ``MutTx`` / ``ReadTx`` and ``TxData`` (a committed
transaction's net changes), schemas and the system tables that store them.
May import: ``spacetimedb.sats`` only. Knows nothing about disk: ``spacetimedb.db`` makes it durable.
"""

from .datastore import Datastore, ReplayError
from .errors import (
    DatastoreError,
    IndexNotUniqueError,
    NoSuchIndexError,
    NoSuchRowError,
    NoSuchTableError,
    ReadOnlyTransactionError,
    SchemaError,
    SequenceExhaustedError,
    TransactionClosedError,
    UniqueConstraintViolation,
)
from .schema import (
    FIRST_USER_ID,
    ST_CLIENT_ID,
    ST_COLUMN_ID,
    ST_CONNECTION_CREDENTIALS_ID,
    ST_CONSTRAINT_ID,
    ST_INDEX_ID,
    ST_MODULE_ID,
    ST_ROW_LEVEL_SECURITY_ID,
    ST_SCHEDULED_ID,
    ST_SEQUENCE_ID,
    ST_TABLE_ID,
    ST_VAR_ID,
    ColumnSchema,
    ConstraintSchema,
    IndexDef,
    IndexSchema,
    ScheduleDef,
    ScheduleSchema,
    SequenceDef,
    SequenceSchema,
    TableDef,
    TableSchema,
)
from .table import Table
from .tx import MutTx, ReadTx, TableChanges, TxData

__all__ = [
    "FIRST_USER_ID",
    "ST_CLIENT_ID",
    "ST_CONNECTION_CREDENTIALS_ID",
    "ST_COLUMN_ID",
    "ST_CONSTRAINT_ID",
    "ST_INDEX_ID",
    "ST_MODULE_ID",
    "ST_ROW_LEVEL_SECURITY_ID",
    "ST_SCHEDULED_ID",
    "ST_SEQUENCE_ID",
    "ST_TABLE_ID",
    "ST_VAR_ID",
    "ColumnSchema",
    "ConstraintSchema",
    "Datastore",
    "DatastoreError",
    "IndexDef",
    "IndexNotUniqueError",
    "IndexSchema",
    "MutTx",
    "NoSuchIndexError",
    "NoSuchRowError",
    "NoSuchTableError",
    "ReadOnlyTransactionError",
    "ReadTx",
    "ReplayError",
    "ScheduleDef",
    "ScheduleSchema",
    "SchemaError",
    "SequenceDef",
    "SequenceExhaustedError",
    "SequenceSchema",
    "Table",
    "TableChanges",
    "TableDef",
    "TableSchema",
    "TransactionClosedError",
    "TxData",
    "UniqueConstraintViolation",
]
