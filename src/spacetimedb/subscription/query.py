"""One distinct subscribed query: its compiled plan, its delta plans, and the triggers that say when a
transaction may change its result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from spacetimedb.datastore import DatastoreError, IndexSchema, TableSchema
from spacetimedb.sats import ProductType
from spacetimedb.sats.types import reads_as
from spacetimedb.sql import SelectPlan, fragment_rows
from spacetimedb.sql import expr as ex
from spacetimedb.sql.plan import Reader, probe_index

from .delta import DeltaPlan, TxContext, equality_filter

ClientId = Any
Subscriber = tuple[ClientId, int]  # (client, query set id)


@dataclass(slots=True, eq=False)
class TableDelta:
    """The change of one query's result in one transaction: BSATN rows of ``table_name``.

    One object is shared by every subscriber of the query, so a server can encode it once per protocol and
    keep the encoding in ``cache`` (e.g. ``cache["v2"] = bytes``). Rows keep their multiplicity."""

    table_id: int
    table_name: str
    row_type: ProductType
    inserts: list[bytes]
    deletes: list[bytes]
    cache: dict[str, Any] = field(default_factory=dict)
    is_event: bool = False  # rows of an event table: inserts only, which clients never store


@dataclass(slots=True, eq=False)
class TableRows:
    """Rows of one table (initial subscription results, or the rows an unsubscribe drops)."""

    table_id: int
    table_name: str
    row_type: ProductType
    rows: list[bytes]


# ---- triggers --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EqTrigger:
    """Changes to ``table_id`` matter only for rows whose column ``pos`` holds one of ``values``."""

    table_id: int
    pos: int
    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class EdgeTrigger:
    """Changes to ``table_id`` matter only for rows ``r`` that join (``r[pos]`` probed in ``index`` of
    ``other_table``) a row ``s`` with ``s[other_pos]`` in ``values``."""

    table_id: int
    pos: int
    other_table: int
    index: IndexSchema
    other_pos: int
    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class AlwaysTrigger:
    table_id: int


Trigger = EqTrigger | EdgeTrigger | AlwaysTrigger


def _triggers(delta: DeltaPlan) -> list[Trigger]:
    relations = delta.fragment.relations
    out: list[Trigger] = []
    for i, relation in enumerate(relations):
        eq = equality_filter(delta.single[i])
        if eq is not None:
            out.append(EqTrigger(relation.table_id, eq[0], tuple(dict.fromkeys(eq[1]))))
            continue
        edge = _edge_trigger(delta, i)
        out.append(edge if edge is not None else AlwaysTrigger(relation.table_id))
    return out


def _edge_trigger(delta: DeltaPlan, i: int) -> EdgeTrigger | None:
    relations = delta.fragment.relations
    for pred in delta.multi:
        cols = ex.join_equality(pred)
        if cols is None:
            continue
        for mine, other in (cols, cols[::-1]):
            if mine.rel != i:
                continue
            other_eq = equality_filter(delta.single[other.rel])
            index = probe_index(relations[other.rel].schema, other.pos)
            if other_eq is None or index is None:
                continue
            return EdgeTrigger(
                relations[i].table_id,
                mine.pos,
                relations[other.rel].table_id,
                index,
                other_eq[0],
                tuple(dict.fromkeys(other_eq[1])),
            )
    return None


# ---- the query -------------------------------------------------------------------------------------------


class Query:
    """A distinct query (by plan key), evaluated once per transaction for all of its subscribers."""

    __slots__ = ("deltas", "key", "plan", "simple", "sql", "subscribers", "table", "triggers")

    def __init__(self, key: str, sql: str, plan: SelectPlan) -> None:
        assert plan.return_table is not None
        self.key = key
        self.sql = sql
        self.plan = plan
        self.table: TableSchema = plan.return_table
        self.deltas = [DeltaPlan(fragment) for fragment in plan.fragments]
        # one fragment over one table: its delta is the filtered changed rows, no counting needed
        self.simple = all(d.n == 1 for d in self.deltas)
        self.triggers = [t for d in self.deltas for t in _triggers(d)]
        self.subscribers: dict[Subscriber, bool] = {}  # -> the subscriber is the database owner

    @property
    def table_ids(self) -> set[int]:
        return {tid for d in self.deltas for tid in d.table_ids}

    def initial_rows(self, tx: Reader) -> list[bytes]:
        encode = tx.table(self.table.table_id).encode
        return [encode(row) for fragment in self.plan.fragments for row in fragment_rows(fragment, tx)]

    def evaluate(self, ctx: TxContext) -> TableDelta | None:
        if self.simple:
            inserts: list[bytes] = []
            deletes: list[bytes] = []
            for delta in self.deltas:
                if ctx.changed(delta.ret_table):
                    ins, dels = delta.single_table_delta(ctx)
                    inserts.extend(ins)
                    deletes.extend(dels)
        else:
            counts: dict[bytes, int] = {}
            for delta in self.deltas:
                if any(ctx.changed(tid) for tid in delta.table_ids):
                    delta.add_delta(ctx, counts)
            inserts = [data for data, n in counts.items() if n > 0 for _ in range(n)]
            deletes = [data for data, n in counts.items() if n < 0 for _ in range(-n)]
        if not inserts and not deletes:
            return None
        return TableDelta(self.table.table_id, self.table.name, self.table.row_type, inserts, deletes)

    def invalid_after_schema_change(self, tx: Reader) -> str | None:
        """Why this query no longer fits the schema (a table dropped or changed, an index it uses gone). A query
        that still fits takes its table's new row type, which may differ where a column's sum type gained
        variants at the end (an automatic migration keeps such subscriptions, as SpacetimeDB's does)."""
        for delta in self.deltas:
            for relation in delta.fragment.relations:
                old = relation.schema
                try:
                    new = tx.table(old.table_id).schema
                except DatastoreError:
                    return f"table `{old.name}` was dropped"
                if new is old:
                    continue
                if new.name != old.name or not reads_as(old.row_type, new.row_type):
                    return f"table `{old.name}` changed"
                if old.public and not new.public:
                    return f"table `{old.name}` is no longer public"
                live = {index.index_id for index in new.indexes}
                if any(index.index_id not in live for index in old.indexes):
                    return f"an index of table `{old.name}` was dropped"
                if new.table_id == self.table.table_id:
                    self.table = new
        return None
