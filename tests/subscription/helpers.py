"""Shared helpers: committing like the host does, and a client's view of its subscriptions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from spacetimedb import sql
from spacetimedb.datastore import Datastore, MutTx
from spacetimedb.sats import Identity, codec
from spacetimedb.subscription import SubscriptionManager, TableRows, TransactionUpdates


def commit_and_evaluate(
    ds: Datastore,
    manager: SubscriptionManager,
    body: Callable[[MutTx], Any],
    deliver: Callable[[TransactionUpdates], None] | None = None,
) -> TransactionUpdates:
    """Run ``body`` in a transaction and evaluate it the way the host must: manager lock held from before the
    commit until evaluation is done, against a read view of the post-commit state. ``deliver`` is called
    under the manager lock, as a server queues messages."""
    tx = ds.begin_mut_tx()
    try:
        body(tx)
    except BaseException:
        ds.rollback(tx)
        raise
    with manager.lock:
        data = tx.prepare_commit()
        view = tx.finish_commit(read_view=True)
        try:
            result = manager.evaluate(data, view)
        finally:
            view.release()
        if deliver is not None:
            deliver(result)
        return result


class ClientView:
    """What a client holds: a multiset of row bytes per table, built from initial rows and deltas."""

    def __init__(self) -> None:
        self.rows: dict[str, Counter[bytes]] = {}

    def add_rows(self, tables: list[TableRows]) -> None:
        for table in tables:
            self.rows.setdefault(table.table_name, Counter()).update(table.rows)

    def remove_rows(self, tables: list[TableRows]) -> None:
        for table in tables:
            self._remove(table.table_name, table.rows)

    def apply(self, client: Any, result: TransactionUpdates) -> None:
        for _, delta in result.updates.get(client, []):
            counts = self.rows.setdefault(delta.table_name, Counter())
            counts.update(delta.inserts)
            self._remove(delta.table_name, delta.deletes)

    def _remove(self, table: str, rows: list[bytes]) -> None:
        counts = self.rows.setdefault(table, Counter())
        for row in rows:
            assert counts[row] > 0, f"delete of a row the client does not hold: {row!r}"
            counts[row] -= 1
            if not counts[row]:
                del counts[row]

    def table(self, name: str) -> Counter[bytes]:
        return +self.rows.get(name, Counter())


def expected_rows(
    ds: Datastore, queries: list[str], caller: Identity, is_owner: bool
) -> dict[str, Counter[bytes]]:
    """Re-run queries from scratch (the oracle): rows as BSATN multisets per table."""
    out: dict[str, Counter[bytes]] = {}
    with ds.begin_tx() as tx:
        for text in queries:
            plan = sql.compile(text, tx, caller, is_owner)
            assert isinstance(plan, sql.SelectPlan) and plan.return_table is not None
            encode = codec(plan.return_table.row_type).encode
            counts = out.setdefault(plan.return_table.name, Counter())
            counts.update(encode(row) for row in sql.execute(plan, tx).rows)
    return {name: +counts for name, counts in out.items() if +counts}
