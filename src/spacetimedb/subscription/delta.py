"""Incremental evaluation of one query fragment from one transaction's changes.

For a fragment over relations R0..Rn-1 (a join when n > 1) the change of its result is the telescoping sum

    ΔV = Σ_i  R0 ⋈ .. ⋈ R(i-1)  ⋈  ΔRi  ⋈  R'(i+1) ⋈ .. ⋈ R'(n-1)

where R' is a relation after the transaction, R before it, and ΔRi carries inserted rows with sign +1 and
deleted rows with sign -1. For two tables this is ΔA ⋈ B' + A ⋈ ΔB, i.e. SpacetimeDB's four insert and four
delete terms with their correction. Term i starts from the transaction's changed rows of Ri (found through
an equality filter when the fragment has one) and reaches the other relations only through index probes
along join equalities; the pre-transaction state of a relation is its post-state probe minus the rows this
transaction inserted plus those it deleted. Nothing ever scans a table.

Results are counted per row (by BSATN bytes) so that a row reached through several matches keeps its
multiplicity and an insert and delete of the same row in one transaction cancel.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from spacetimedb.datastore import IndexSchema, TxData
from spacetimedb.sql import expr as ex
from spacetimedb.sql.plan import Fragment, Reader, probe_index

Row = tuple[Any, ...]
Entry = tuple[Row, bytes]
Buckets = dict[Any, tuple[list[Entry], list[Entry]]]

INDEX_ERROR = "Subscriptions require indexes on join columns"


class SubscriptionPlanError(Exception):
    """A query that cannot be evaluated incrementally (e.g. a join without indexes)."""


class TxContext:
    """One committed transaction: its changes, indexed on demand, and the post-commit read view.

    Shared by every query evaluated for the transaction, so each index of the changes is built once."""

    __slots__ = ("_buckets", "_encoded", "_entries", "_inserted", "changes", "tx")

    def __init__(self, tx_data: TxData, tx: Reader) -> None:
        self.tx = tx
        self.changes = {c.table_id: c for c in tx_data.tables}
        self._buckets: dict[tuple[int, int], Buckets] = {}
        self._inserted: dict[int, set[Any]] = {}
        self._encoded: dict[int, dict[Any, bytes]] = {}
        self._entries: dict[int, tuple[list[Entry], list[Entry]]] = {}

    def changed(self, table_id: int) -> bool:
        return table_id in self.changes

    def entries(self, table_id: int) -> tuple[list[Entry], list[Entry]]:
        """The changed rows of a table with their BSATN: (inserts, deletes)."""
        found = self._entries.get(table_id)
        if found is None:
            changes = self.changes.get(table_id)
            if changes is None:
                return [], []
            found = self._entries[table_id] = (
                list(zip(changes.inserts, changes.insert_bytes, strict=True)),
                list(zip(changes.deletes, changes.delete_bytes, strict=True)),
            )
        return found

    def buckets(self, table_id: int, pos: int) -> Buckets:
        """The changed rows of a table grouped by the value of one column: value -> (inserts, deletes)."""
        key = (table_id, pos)
        found = self._buckets.get(key)
        if found is not None:
            return found
        buckets: Buckets = {}
        changes = self.changes.get(table_id)
        if changes is not None:
            for rows, data, side in (
                (changes.inserts, changes.insert_bytes, 0),
                (changes.deletes, changes.delete_bytes, 1),
            ):
                for row, raw in zip(rows, data, strict=True):
                    value = row[pos]
                    bucket = buckets.get(value)
                    if bucket is None:
                        bucket = buckets[value] = ([], [])
                    bucket[side].append((row, raw))
        self._buckets[key] = buckets
        return buckets

    def was_inserted(self, table_id: int, row: Row) -> bool:
        inserted = self._inserted.get(table_id)
        if inserted is None:
            changes = self.changes.get(table_id)
            inserted = self._inserted[table_id] = set(changes.inserts) if changes is not None else set()
        return row in inserted

    def encode(self, table_id: int, row: Row) -> bytes:
        """BSATN of a row, encoded at most once per transaction whichever queries emit it."""
        cache = self._encoded.get(table_id)
        if cache is None:
            cache = self._encoded[table_id] = {}
        data = cache.get(row)
        if data is None:
            data = cache[row] = self.tx.table(table_id).encode(row)
        return data


# ---- plans -----------------------------------------------------------------------------------------------


@dataclass(slots=True)
class ProbeStep:
    """Bind relation ``rel`` by probing its index with the value of a bound column."""

    rel: int
    table_id: int
    index: IndexSchema
    src_rel: int
    src_pos: int
    dst_pos: int
    pre_state: bool  # read the relation as it was before the transaction
    row_filter: Callable[[Row], bool] | None
    rows_filter: Callable[[list[Any]], bool] | None


@dataclass(slots=True)
class StartPlan:
    """Term ``rel`` of the telescoping sum: start from the changed rows of relation ``rel``."""

    rel: int
    table_id: int
    eq_pos: int | None  # look changed rows up by this column's value...
    eq_values: list[Any]  # ...being one of these
    row_filter: Callable[[Row], bool] | None
    steps: list[ProbeStep] = field(default_factory=list)
    # When the relation is not the one returned, only these columns of its rows matter to the result: changed
    # rows that agree on them (an update of other columns) contribute the same rows with opposite signs.
    relevant: Callable[[Row], Any] | None = None


def _split(fragment: Fragment) -> tuple[dict[int, list[ex.Pred]], list[ex.Pred]]:
    single: dict[int, list[ex.Pred]] = {k: [] for k in range(len(fragment.relations))}
    multi: list[ex.Pred] = []
    for pred in fragment.conjuncts:
        rels = ex.relations_of(pred)
        if len(rels) == 1:
            single[next(iter(rels))].append(pred)
        elif not rels:
            single[0].append(pred)
        else:
            multi.append(pred)
    return single, multi


def equality_filter(preds: list[ex.Pred]) -> tuple[int, list[Any], ex.Pred] | None:
    """The first ``c = v`` (or ``c = v1 OR c = v2``) among one relation's predicates."""
    for pred in preds:
        found = ex.equality_set(pred)
        if found is not None:
            column, values = found
            return column.pos, values, pred
    return None


class DeltaPlan:
    """How to compute the change of one fragment's result from a transaction."""

    __slots__ = ("fragment", "indexes", "multi", "n", "ret", "ret_table", "single", "starts", "table_ids")

    def __init__(self, fragment: Fragment) -> None:
        self.fragment = fragment
        self.n = len(fragment.relations)
        self.ret = fragment.ret
        self.ret_table = fragment.relations[self.ret].table_id
        self.single, self.multi = _split(fragment)
        self.table_ids = {r.table_id for r in fragment.relations}
        self.indexes: set[int] = set()
        self.starts = [self._start(i) for i in range(self.n)]

    def _start(self, i: int) -> StartPlan:
        relation = self.fragment.relations[i]
        preds = self.single[i]
        eq = equality_filter(preds)
        rest = [p for p in preds if eq is None or p is not eq[2]]
        start = StartPlan(
            i,
            relation.table_id,
            eq[0] if eq else None,
            list(dict.fromkeys(eq[1])) if eq else [],
            ex.compile_row(rest, i),
        )
        start.steps = self._probe_order(i)
        if i != self.ret and start.steps:
            positions = sorted({c.pos for p in self.multi for c in ex.columns_of(p) if c.rel == i})
            start.relevant = itemgetter(*positions)
        return start

    def _probe_order(self, start: int) -> list[ProbeStep]:
        bound = {start}
        pending = list(self.multi)
        steps = []
        relations = self.fragment.relations
        while len(bound) < self.n:
            chosen = None
            for pred in pending:
                cols = ex.join_equality(pred)
                if cols is None:
                    continue
                for src, dst in (cols, cols[::-1]):
                    if src.rel in bound and dst.rel not in bound:
                        index = probe_index(relations[dst.rel].schema, dst.pos)
                        if index is not None:
                            chosen = (pred, src, dst, index)
                            break
                if chosen:
                    break
            if chosen is None:
                raise SubscriptionPlanError(INDEX_ERROR)
            pred, src, dst, index = chosen
            pending.remove(pred)
            bound.add(dst.rel)
            self.indexes.add(index.index_id)
            ready = [p for p in pending if ex.relations_of(p) <= bound]
            pending = [p for p in pending if not ex.relations_of(p) <= bound]
            steps.append(
                ProbeStep(
                    dst.rel,
                    relations[dst.rel].table_id,
                    index,
                    src.rel,
                    src.pos,
                    dst.pos,
                    dst.rel < start,
                    ex.compile_row(self.single[dst.rel], dst.rel),
                    ex.compile_rows(ready),
                )
            )
        return steps

    # -- evaluation -----------------------------------------------------------------------------------------

    def start_entries(self, start: StartPlan, ctx: TxContext) -> tuple[Iterable[Entry], Iterable[Entry]]:
        if start.eq_pos is None:
            return ctx.entries(start.table_id)
        buckets = ctx.buckets(start.table_id, start.eq_pos)
        if len(start.eq_values) == 1:
            found = buckets.get(start.eq_values[0])
            return found if found is not None else ((), ())
        inserts: list[Entry] = []
        deletes: list[Entry] = []
        for value in start.eq_values:
            found = buckets.get(value)
            if found is not None:
                inserts.extend(found[0])
                deletes.extend(found[1])
        return inserts, deletes

    def single_table_delta(self, ctx: TxContext) -> tuple[list[bytes], list[bytes]]:
        """The delta of a one-relation fragment: filtered changed rows, no counting needed (a table is a set
        and a transaction's net changes never insert and delete the same row)."""
        start = self.starts[0]
        inserts, deletes = self.start_entries(start, ctx)
        keep = start.row_filter
        if keep is None:
            return [data for _, data in inserts], [data for _, data in deletes]
        return [data for row, data in inserts if keep(row)], [data for row, data in deletes if keep(row)]

    def add_delta(self, ctx: TxContext, counts: dict[bytes, int]) -> None:
        """Add this fragment's signed result changes to ``counts`` (bytes -> net multiplicity)."""
        for start in self.starts:
            if not ctx.changed(start.table_id):
                continue
            inserts, deletes = self.start_entries(start, ctx)
            keep = start.row_filter
            if start.relevant is not None:
                self._add_netted(ctx, start, inserts, deletes, counts)
                continue
            for sign, entries in ((1, inserts), (-1, deletes)):
                for row, data in entries:
                    if keep is not None and not keep(row):
                        continue
                    if not start.steps:
                        counts[data] = counts.get(data, 0) + sign
                        continue
                    rs: list[Any] = [None] * self.n
                    rs[start.rel] = row
                    self._extend(
                        ctx, start.steps, 0, rs, sign, data if start.rel == self.ret else None, counts
                    )

    def _add_netted(
        self,
        ctx: TxContext,
        start: StartPlan,
        inserts: Iterable[Entry],
        deletes: Iterable[Entry],
        counts: dict[bytes, int],
    ) -> None:
        """Start from changed rows of a relation that is not returned, netting out rows that differ only in
        columns the query does not look at (e.g. renaming a team does not change which players join it)."""
        assert start.relevant is not None
        keep = start.row_filter
        relevant = start.relevant
        net: dict[Any, list[Any]] = {}
        for sign, entries in ((1, inserts), (-1, deletes)):
            for row, _ in entries:
                if keep is not None and not keep(row):
                    continue
                key = relevant(row)
                slot = net.get(key)
                if slot is None:
                    net[key] = [sign, row]
                else:
                    slot[0] += sign
        for weight, row in net.values():
            if weight:
                rs: list[Any] = [None] * self.n
                rs[start.rel] = row
                self._extend(ctx, start.steps, 0, rs, weight, None, counts)

    def _extend(
        self,
        ctx: TxContext,
        steps: list[ProbeStep],
        depth: int,
        rs: list[Any],
        sign: int,
        ret_data: bytes | None,
        counts: dict[bytes, int],
    ) -> None:
        step = steps[depth]
        key = rs[step.src_rel][step.src_pos]
        last = depth + 1 == len(steps)
        for row in self._probe(ctx, step, key):
            if step.row_filter is not None and not step.row_filter(row):
                continue
            rs[step.rel] = row
            if step.rows_filter is not None and not step.rows_filter(rs):
                continue
            if not last:
                self._extend(ctx, steps, depth + 1, rs, sign, ret_data, counts)
                continue
            data = ret_data if ret_data is not None else ctx.encode(self.ret_table, rs[self.ret])
            counts[data] = counts.get(data, 0) + sign
        rs[step.rel] = None

    @staticmethod
    def _probe(ctx: TxContext, step: ProbeStep, key: Any) -> list[Row]:
        tx = ctx.tx
        if len(step.index.columns) == 1:
            rows = tx.seek(step.table_id, step.index.index_id, key)
        else:
            rows = tx.prefix(step.table_id, step.index.index_id, (key,))
        if not step.pre_state or not ctx.changed(step.table_id):
            return rows
        # before the transaction: without the rows it inserted, with the rows it deleted
        table_id = step.table_id
        before = [r for r in rows if not ctx.was_inserted(table_id, r)]
        bucket = ctx.buckets(table_id, step.dst_pos).get(key)
        if bucket is not None:
            before.extend(row for row, _ in bucket[1])
        return before
