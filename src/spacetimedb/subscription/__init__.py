"""Subscriptions: keeping every client's queries live, incrementally, one committed transaction at a time.

Owns: ``SubscriptionManager`` (one per database): query sets per client, deduplication of identical queries
across clients, candidate selection through inverted indexes, incremental (delta) evaluation, fan-out.
May import: ``spacetimedb.sats``, ``spacetimedb.datastore``, ``spacetimedb.sql`` (and ``spacetimedb.db``).
Never the server, host or module layers: the server turns what this returns into protocol messages.

What may be subscribed (``spacetimedb.sql.compile_subscription``): ``SELECT * FROM t [WHERE ...]`` with any
predicate (AND, OR, NOT, comparisons, ``:sender``), and ``SELECT t.* FROM t JOIN u ON t.a = u.b [WHERE ...]``
returning one table's rows, where both join columns have an index (else "Subscriptions require indexes on
join columns"). For non-owners, row-level security rules are spliced in (a union of fragments, possibly
joining more tables; their join columns need indexes too).

API for the server::

    manager = SubscriptionManager()
    rows = manager.subscribe(client_id, query_set_id, ["SELECT * FROM t WHERE id = 1"], caller, is_owner, tx)
    # -> list[TableRows(table_id, table_name, row_type, rows: list[bytes])]   (SubscribeApplied)
    # raises SubscriptionError (message names the query) and registers nothing on failure
    dropped = manager.unsubscribe(client_id, query_set_id, tx)   # rows to delete, or None without tx
    manager.remove_client(client_id)                            # on disconnect
    # after every commit, on the host thread, with a read view of the post-commit state:
    out = manager.evaluate(tx_data, tx)
    # out.updates: {client_id: [(query_set_id, TableDelta(table_id, table_name, row_type,
    #                                                     inserts: list[bytes], deletes: list[bytes]))]}
    # out.errors:  {client_id: [(query_set_id, message)]}  query sets dropped (send SubscriptionError)

Semantics: rows are BSATN (taken from ``TxData`` when the row changed; encoded once per transaction
otherwise), so a delete repeats the insert's bytes exactly. Multiplicities are kept (a row joined to two rows
arrives twice). A ``TableDelta`` is shared by every subscriber of its query: encode it once per protocol and
cache the bytes in ``delta.cache``. Send each client one message per transaction built from its list; the
reducer's caller gets its list inside the reducer result instead of a TransactionUpdate.

How a transaction is evaluated: a change to table T only looks at queries reading T; a query whose filter
fixes a column (``c = v``, ``c = v1 OR c = v2``) is found through an inverted index value -> queries, and a
join whose other side is fixed that way is found by probing the join index for the changed row; everything
else on T is always evaluated. Each candidate query computes its delta from the transaction's rows only
(``delta`` module: ΔA ⋈ B' + A ⋈ ΔB with index probes), never by re-running the query.

Thread safety: see ``SubscriptionManager`` — every call takes ``manager.lock``; the host holds it across
commit + ``evaluate`` so concurrent subscribes are exactly-once.
"""

from .delta import INDEX_ERROR, DeltaPlan, TxContext
from .manager import SubscriptionError, SubscriptionManager, TransactionUpdates
from .query import Query, TableDelta, TableRows

__all__ = [
    "INDEX_ERROR",
    "DeltaPlan",
    "Query",
    "SubscriptionError",
    "SubscriptionManager",
    "TableDelta",
    "TableRows",
    "TransactionUpdates",
    "TxContext",
]
