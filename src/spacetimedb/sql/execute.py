"""Running plans: SELECT over any transaction, DML and SET over a mutable one."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from operator import itemgetter
from typing import Any

from spacetimedb.datastore import ST_VAR_ID, DatastoreError, MutTx
from spacetimedb.datastore.index import sort_key_for
from spacetimedb.sats import ProductType, SumValue
from spacetimedb.sizes import format_size

from .errors import SqlExecutionError, SqlLimitError
from .plan import (
    ColumnsOutput,
    CountOutput,
    DeletePlan,
    Fragment,
    InsertPlan,
    Plan,
    Reader,
    SelectPlan,
    SetVarPlan,
    StarOutput,
    UpdatePlan,
)

Row = tuple[Any, ...]
ROW_LIMIT_VAR = "row_limit"


@dataclass(slots=True)
class Stats:
    rows_inserted: int = 0
    rows_deleted: int = 0
    rows_updated: int = 0

    def to_json(self) -> dict[str, int]:
        return {
            "rows_inserted": self.rows_inserted,
            "rows_deleted": self.rows_deleted,
            "rows_updated": self.rows_updated,
        }


@dataclass(slots=True)
class StatementResult:
    """Rows (tuples in ``schema`` order) of a query; DML returns no rows and an empty schema."""

    schema: ProductType
    rows: list[Row] = field(default_factory=list)
    stats: Stats = field(default_factory=Stats)


@dataclass(frozen=True, slots=True)
class QueryLimits:
    """Bounds on what one read may return. ``max_rows`` is a non-owner's row limit when the database sets none
    (``SET row_limit``, which an owner may use to raise it); None means no bound."""

    max_rows: int | None = None
    max_bytes: int | None = None

    def rows_for(self, plan: SelectPlan, tx: Reader) -> int | None:
        """The row limit that applies to ``plan`` (compiled for the owner or not)."""
        return self.rows_for_caller(not plan.check_row_limit, tx)

    def rows_for_caller(self, is_owner: bool, tx: Reader) -> int | None:
        """The row limit of a read: none for the owner, else the database's ``row_limit`` or the default."""
        if is_owner:
            return None
        limit = row_limit(tx)
        return limit if limit is not None else self.max_rows


NO_LIMITS = QueryLimits()


def execute(plan: Plan, tx: Reader, limits: QueryLimits = NO_LIMITS) -> StatementResult:
    """Run a compiled statement. SELECT/SHOW accept any transaction; the others need a ``MutTx``.

    Raises ``SqlLimitError`` when a non-owner's SELECT would exceed its row limit (estimated first, then
    counted) and ``SqlExecutionError`` when a write fails (e.g. a unique constraint); the caller rolls the
    transaction back."""
    if isinstance(plan, SelectPlan):
        max_rows = limits.rows_for(plan, tx)
        if max_rows is not None:
            check_estimate([plan], tx, max_rows)
        return StatementResult(plan.schema, select_rows(plan, tx, max_rows))
    if not isinstance(tx, MutTx):
        raise SqlExecutionError("DML statements need a mutable transaction")
    try:
        if isinstance(plan, InsertPlan):
            return _insert(plan, tx)
        if isinstance(plan, DeletePlan):
            return _delete(plan, tx)
        if isinstance(plan, UpdatePlan):
            return _update(plan, tx)
        return _set_var(plan, tx)
    except DatastoreError as exc:
        raise SqlExecutionError(str(exc)) from None


# ---- SELECT ----------------------------------------------------------------------------------------------


def fragment_rows(fragment: Fragment, tx: Reader, rel: int | None = None) -> Iterable[Row]:
    """Whole rows of relation ``rel`` (default: the fragment's return relation), one per match."""
    rel = fragment.ret if rel is None else rel
    plan = fragment.plan
    if not plan.steps:
        return plan.first_rows(tx)
    return (rs[rel] for rs in plan.bindings(tx))


def _projected(fragment: Fragment, plan: SelectPlan, tx: Reader) -> Iterable[Row]:
    out = plan.output
    if isinstance(out, StarOutput):
        return fragment_rows(fragment, tx)  # the fragment's own return relation (UNION ALL branches differ)
    assert isinstance(out, ColumnsOutput)
    fplan = fragment.plan
    if not fplan.steps:
        positions = [c.pos for c in out.columns]
        if len(positions) == 1:
            pos = positions[0]
            return ((row[pos],) for row in fplan.first_rows(tx))
        getter = itemgetter(*positions)
        return (getter(row) for row in fplan.first_rows(tx))
    columns = [(c.rel, c.pos) for c in out.columns]
    return (tuple(rs[r][p] for r, p in columns) for rs in fplan.bindings(tx))


def select_rows(plan: SelectPlan, tx: Reader, max_rows: int | None = None) -> list[Row]:
    """The rows of a SELECT; with ``max_rows``, ``SqlLimitError`` as soon as there would be more."""
    rows = _select_rows(plan, tx, max_rows)
    if max_rows is not None and len(rows) > max_rows:
        raise row_limit_exceeded(max_rows)
    return rows


def row_limit_exceeded(max_rows: int) -> SqlLimitError:
    return SqlLimitError(
        f"the result has more than {max_rows} rows (the row limit; the owner may raise it with SET row_limit)"
    )


def result_too_large(max_bytes: int) -> SqlLimitError:
    return SqlLimitError(f"the result is larger than {format_size(max_bytes)}, the query byte limit")


def _select_rows(plan: SelectPlan, tx: Reader, max_rows: int | None) -> list[Row]:
    out = plan.output
    if isinstance(out, CountOutput):
        total = 0
        for fragment in plan.fragments:
            fplan = fragment.plan
            if not fplan.steps and not fplan.first_preds and fplan.first_access.kind == "scan":
                total += tx.count(fragment.relations[fplan.first].table_id)
            else:
                total += sum(1 for _ in fplan.bindings(tx))
        return [(total,)]
    if plan.order_by:
        return _ordered(plan, tx, max_rows)
    rows: Iterator[Row] = (row for fragment in plan.fragments for row in _projected(fragment, plan, tx))
    stop = None if plan.limit is None else plan.offset + plan.limit
    if max_rows is not None:  # one more than allowed is enough to know it is too many
        stop = plan.offset + max_rows + 1 if stop is None else min(stop, plan.offset + max_rows + 1)
    if plan.offset or stop is not None:
        return list(islice(rows, plan.offset, stop))
    return list(rows)


def _ordered(plan: SelectPlan, tx: Reader, max_rows: int | None) -> list[Row]:
    keys = [(c.rel, c.pos) for c, _ in plan.order_by]
    out = plan.output
    entries: list[tuple[tuple[Any, ...], Row]] = []
    # sorting needs every row first: bound what is gathered, unless LIMIT keeps the answer small anyway
    gather_bound = None if max_rows is None or plan.limit is not None else plan.offset + max_rows
    for fragment in plan.fragments:
        for rs in fragment.plan.bindings(tx):
            if gather_bound is not None and len(entries) > gather_bound:
                raise row_limit_exceeded(max_rows or 0)
            sort_values = tuple(rs[r][p] for r, p in keys)
            if isinstance(out, StarOutput):
                row = rs[fragment.ret]
            else:
                assert isinstance(out, ColumnsOutput)
                row = tuple(rs[c.rel][c.pos] for c in out.columns)
            entries.append((sort_values, row))
    # stable sorts from the last key to the first give the lexicographic order, each key in its direction
    for i in range(len(keys) - 1, -1, -1):
        column, descending = plan.order_by[i]
        key = sort_key_for(column.type)
        entries.sort(key=_entry_key(i, key), reverse=descending)
    stop = None if plan.limit is None else plan.offset + plan.limit
    return [row for _, row in entries[plan.offset : stop]]


def _entry_key(i: int, key: Callable[[Any], Any] | None) -> Callable[[tuple[tuple[Any, ...], Row]], Any]:
    if key is None:
        return lambda entry: entry[0][i]
    return lambda entry: key(entry[0][i])


# ---- row limit -------------------------------------------------------------------------------------------


def row_limit(tx: Reader) -> int | None:
    """``st_var.row_limit``, if set."""
    schema = tx.schema(ST_VAR_ID)
    index = schema.index_on((0,))
    if index is None:
        return None
    row = tx.find(ST_VAR_ID, index.index_id, ROW_LIMIT_VAR)
    if row is None:
        return None
    value = row[1].value if isinstance(row[1], SumValue) else row[1]
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def estimate_rows(plan: SelectPlan, tx: Reader) -> int:
    total = sum(fragment.plan.estimate(tx) for fragment in plan.fragments)
    simple = all(not f.plan.steps and not f.plan.first_preds for f in plan.fragments)
    if plan.limit is not None and not plan.order_by and simple and not isinstance(plan.output, CountOutput):
        total = min(total, plan.offset + plan.limit)
    return total


def check_estimate(plans: list[SelectPlan], tx: Reader, limit: int) -> None:
    """Reject queries whose estimated cardinality, as SpacetimeDB estimates it, exceeds ``limit``."""
    estimate = sum(estimate_rows(plan, tx) for plan in plans)
    if estimate > limit:
        raise SqlLimitError(f"Estimated cardinality ({estimate} rows) exceeds limit ({limit} rows)")


# ---- DML -------------------------------------------------------------------------------------------------


_EMPTY = ProductType(())


def _insert(plan: InsertPlan, tx: MutTx) -> StatementResult:
    table_id = plan.table.table_id
    auto_inc = [seq.col_pos for seq in plan.table.sequences]
    inserted = 0
    for row in plan.rows:
        # inserting a row that is already there is a no-op (set semantics): do not count it
        if not any(row[c] == 0 for c in auto_inc) and tx.contains(table_id, row):
            continue
        tx.insert(table_id, row)
        inserted += 1
    return StatementResult(_EMPTY, stats=Stats(rows_inserted=inserted))


def _matching(plan_fragment: Fragment, tx: MutTx) -> list[Row]:
    return list(fragment_rows(plan_fragment, tx))


def _delete(plan: DeletePlan, tx: MutTx) -> StatementResult:
    table_id = plan.table.table_id
    deleted = 0
    for row in _matching(plan.fragment, tx):
        if tx.delete(table_id, row):
            deleted += 1
    return StatementResult(_EMPTY, stats=Stats(rows_deleted=deleted))


def _update(plan: UpdatePlan, tx: MutTx) -> StatementResult:
    table_id = plan.table.table_id
    old_rows = _matching(plan.fragment, tx)
    new_rows = []
    for row in old_rows:
        values = list(row)
        for pos, value in plan.assignments:
            values[pos] = value
        new_rows.append(tuple(values))
    # delete all first, so that rows may swap unique keys among themselves
    for row in old_rows:
        tx.delete(table_id, row)
    for row in new_rows:
        tx.insert(table_id, row)
    return StatementResult(_EMPTY, stats=Stats(rows_updated=len(old_rows)))


def _set_var(plan: SetVarPlan, tx: MutTx) -> StatementResult:
    schema = tx.schema(ST_VAR_ID)
    index = schema.index_on((0,))
    assert index is not None
    existing = tx.find(ST_VAR_ID, index.index_id, plan.name)
    if existing is not None:
        tx.delete(ST_VAR_ID, existing)
    tx.insert(ST_VAR_ID, (plan.name, plan.value))
    return StatementResult(_EMPTY, stats=Stats(rows_inserted=1))
