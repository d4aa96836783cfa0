"""RelationalDB: the datastore made durable by the commitlog, the durability worker and snapshots.

Owns: opening a database directory (lock, snapshot restore, commitlog replay), ``commit_tx`` (logging each
transaction's record), durable-offset waiting and listeners, periodic snapshots.
May import: ``sats``, ``commitlog``, ``durability``, ``datastore``.
"""

from .relational_db import CommitResult, DbOptions, OpenStats, RelationalDB, replay_transactions

__all__ = ["CommitResult", "DbOptions", "OpenStats", "RelationalDB", "replay_transactions"]
