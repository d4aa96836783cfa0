"""Plans: what a statement compiles to, and how a query fragment is evaluated (access paths, join order).

A SELECT is a union of *fragments* (one, unless row-level security replaced a table by several rules). A
fragment is a conjunctive query: relations (tables with aliases) and a list of predicates, all ANDed. Its
physical plan (``FragmentPlan``) starts from the relation with the best access path and adds the others one
at a time, preferring an index probe along an equality, then a hash join, then a nested loop; each predicate
runs as soon as the relations it reads are bound.

Access paths for one relation, best first: unique-index seek, index seek, seek of a few keys (``c = 1 OR c =
2``), prefix of a multi-column index, index range, full scan. Predicates an access path implies are dropped
from the residual filter.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from spacetimedb.datastore import IndexSchema, TableSchema
from spacetimedb.sats import PrimitiveType, ProductType, SumValue
from spacetimedb.sats.types import option_inner

from . import expr as ex
from .expr import ColumnRef, Pred

Row = tuple[Any, ...]


class Reader(Protocol):
    """What plans need from a transaction (``ReadTx`` and ``MutTx`` both fit)."""

    def scan(self, table_id: int) -> Iterator[Row]: ...
    def count(self, table_id: int) -> int: ...
    def seek(self, table_id: int, index_id: int, key: Any) -> list[Row]: ...
    def range(
        self,
        table_id: int,
        index_id: int,
        low: Any = None,
        high: Any = None,
        low_inclusive: bool = True,
        high_inclusive: bool = False,
    ) -> list[Row]: ...
    def prefix(self, table_id: int, index_id: int, prefix: tuple[Any, ...]) -> list[Row]: ...
    def prefix_range(
        self,
        table_id: int,
        index_id: int,
        prefix: tuple[Any, ...],
        low: Any,
        high: Any,
        low_inclusive: bool = True,
        high_inclusive: bool = False,
    ) -> list[Row]: ...
    def table_id(self, name: str) -> int | None: ...
    def schemas(self) -> list[TableSchema]: ...
    def schema(self, table_id: int) -> TableSchema: ...
    def find(self, table_id: int, index_id: int, key: Any) -> Row | None: ...
    def table(self, table_id: int) -> Any: ...


@dataclass(frozen=True, slots=True)
class Relation:
    alias: str
    schema: TableSchema

    @property
    def table_id(self) -> int:
        return self.schema.table_id


class Fragment:
    """A conjunctive query over ``relations``; ``ret`` is the relation whose rows a ``t.*`` query returns."""

    __slots__ = ("_plan", "conjuncts", "relations", "ret")

    def __init__(self, relations: tuple[Relation, ...], conjuncts: tuple[Pred, ...], ret: int = 0) -> None:
        self.relations = relations
        self.conjuncts = conjuncts
        self.ret = ret
        self._plan: FragmentPlan | None = None

    @property
    def plan(self) -> FragmentPlan:
        if self._plan is None:
            self._plan = plan_fragment(self)
        return self._plan

    def key(self) -> str:
        """Canonical text: equal for queries that must return the same rows (aliases and order of ANDs aside)."""
        tables = ",".join(str(r.table_id) for r in self.relations)
        preds = " AND ".join(sorted(p.key() for p in self.conjuncts))
        return f"[{tables}]->{self.ret} WHERE {preds}"

    def __repr__(self) -> str:
        return f"Fragment({', '.join(r.alias for r in self.relations)}; {self.key()})"


# ---- access paths ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class Access:
    """How to fetch the candidate rows of one relation without looking at other relations."""

    kind: str  # seek | multi_seek | prefix | range | scan
    table_id: int
    index: IndexSchema | None = None
    key: Any = None  # seek: the key; multi_seek: list of keys; prefix / range-with-prefix: the prefix tuple
    low: Any = None
    high: Any = None
    low_inclusive: bool = True
    high_inclusive: bool = True
    empty: bool = False  # the bounds contradict each other
    label: str = ""

    @property
    def rank(self) -> int:
        if self.kind == "seek":
            return 0 if self.index is not None and self.index.unique else 1
        return {"multi_seek": 2, "prefix": 3, "range": 4, "scan": 5}[self.kind]

    def rows(self, tx: Reader) -> Iterable[Row]:
        if self.empty:
            return ()
        tid = self.table_id
        if self.kind == "scan":
            return tx.scan(tid)
        assert self.index is not None
        iid = self.index.index_id
        if self.kind == "seek":
            return tx.seek(tid, iid, self.key)
        if self.kind == "multi_seek":
            return [row for key in self.key for row in tx.seek(tid, iid, key)]
        if self.kind == "prefix":
            return tx.prefix(tid, iid, self.key)
        if len(self.index.columns) == 1:
            return tx.range(tid, iid, self.low, self.high, self.low_inclusive, self.high_inclusive)
        return tx.prefix_range(
            tid, iid, self.key or (), self.low, self.high, self.low_inclusive, self.high_inclusive
        )

    def estimate(self, tx: Reader) -> int:
        """Rows this access path will produce (exact for seeks, the table size otherwise)."""
        if self.empty:
            return 0
        if self.kind == "seek":
            assert self.index is not None  # every seek goes through an index
            return len(tx.seek(self.table_id, self.index.index_id, self.key))
        if self.kind == "multi_seek":
            assert self.index is not None
            index_id = self.index.index_id
            return sum(len(tx.seek(self.table_id, index_id, k)) for k in self.key)
        return tx.count(self.table_id)

    def describe(self) -> str:
        if self.kind == "scan":
            return f"Scan {self.label}"
        assert self.index is not None
        name = self.index.name
        if self.kind == "seek":
            return f"IndexSeek {self.label} using {name} key={self.key!r}"
        if self.kind == "multi_seek":
            return f"IndexMultiSeek {self.label} using {name} keys={self.key!r}"
        if self.kind == "prefix":
            return f"IndexPrefix {self.label} using {name} prefix={self.key!r}"
        low = "[" if self.low_inclusive else "("
        high = "]" if self.high_inclusive else ")"
        bounds = f"{low}{_bound(self.low)}, {_bound(self.high)}{high}"
        prefix = f" prefix={self.key!r}" if self.key else ""
        return f"IndexRange {self.label} using {name}{prefix} {bounds}"


def _bound(value: Any) -> str:
    return "-inf" if value is None else repr(value)


class _ColumnFacts:
    """What the single-relation predicates of one relation say about each column."""

    def __init__(self) -> None:
        self.eq: dict[int, tuple[Any, Pred]] = {}
        self.multi: dict[int, tuple[list[Any], Pred]] = {}
        self.lower: dict[int, list[tuple[Any, bool, Pred]]] = {}
        self.upper: dict[int, list[tuple[Any, bool, Pred]]] = {}


def _collect_facts(preds: list[Pred]) -> _ColumnFacts:
    facts = _ColumnFacts()
    for pred in preds:
        eq = ex.column_equality(pred)
        if eq is not None:
            facts.eq.setdefault(eq[0].pos, (eq[1], pred))
            continue
        many = ex.equality_set(pred)
        if many is not None:
            facts.multi.setdefault(many[0].pos, (many[1], pred))
            continue
        if (
            isinstance(pred, ex.Cmp)
            and isinstance(pred.left, ColumnRef)
            and isinstance(pred.right, ex.Const)
            and pred.op in ("<", "<=", ">", ">=")
            and _range_safe(pred.left)
        ):
            value = pred.right.value
            bound = (value, pred.op in ("<=", ">="), pred)
            side = facts.lower if pred.op in (">", ">=") else facts.upper
            side.setdefault(pred.left.pos, []).append(bound)
    return facts


def _range_safe(column: ColumnRef) -> bool:
    # Floats order NaN above every number in indexes, unlike Python's comparisons; options and sums are not
    # range-comparable. Ranges over those keep their predicates as plain filters.
    ty = column.type
    return not (isinstance(ty, PrimitiveType) and ty.is_float) and option_inner(ty) is None


def _tightest(bounds: list[tuple[Any, bool, Pred]], lower: bool) -> tuple[Any, bool]:
    value, inclusive, _ = bounds[0]
    for other, other_inclusive, _ in bounds[1:]:
        if other == value:
            inclusive = inclusive and other_inclusive
        elif (other > value) == lower:
            value, inclusive = other, other_inclusive
    return value, inclusive


def choose_access(rel: int, relation: Relation, preds: list[Pred]) -> tuple[Access, list[Pred]]:
    """The best access path for ``relation`` given its single-relation predicates, and the residual ones."""
    schema = relation.schema
    label = relation.alias
    best = Access("scan", schema.table_id, label=label)
    if not preds:
        return best, []
    facts = _collect_facts(preds)
    if not (facts.eq or facts.multi or facts.lower or facts.upper):
        return best, list(preds)
    best_used: list[Pred] = []
    for index in schema.indexes:
        if (
            index.columns[0] not in facts.eq
            and index.columns[0] not in facts.multi
            and index.columns[0] not in facts.lower
            and index.columns[0] not in facts.upper
        ):
            continue
        candidate = _index_access(index, schema.table_id, facts, label)
        if candidate is None:
            continue
        access, used = candidate
        if access.rank < best.rank:
            best, best_used = access, used
            if access.rank == 0:
                break  # a unique seek cannot be beaten
    used_ids = {id(p) for p in best_used}
    return best, [p for p in preds if id(p) not in used_ids]


def _index_access(
    index: IndexSchema, table_id: int, facts: _ColumnFacts, label: str
) -> tuple[Access, list[Pred]] | None:
    cols = index.columns
    eq_prefix: list[Any] = []
    used: list[Pred] = []
    for col in cols:
        if col not in facts.eq:
            break
        value, pred = facts.eq[col]
        eq_prefix.append(value)
        used.append(pred)
    if len(eq_prefix) == len(cols):
        key = eq_prefix[0] if len(cols) == 1 else tuple(eq_prefix)
        return Access("seek", table_id, index, key=key, label=label), used
    next_col = cols[len(eq_prefix)]
    if not eq_prefix and len(cols) == 1 and next_col in facts.multi:
        values, pred = facts.multi[next_col]
        keys = list(dict.fromkeys(values))
        return Access("multi_seek", table_id, index, key=keys, label=label), [pred]
    lower = facts.lower.get(next_col)
    upper = facts.upper.get(next_col)
    if lower or upper:
        access = Access("range", table_id, index, key=tuple(eq_prefix), label=label)
        if lower:
            access.low, access.low_inclusive = _tightest(lower, lower=True)
            used.extend(p for _, _, p in lower)
        if upper:
            access.high, access.high_inclusive = _tightest(upper, lower=False)
            used.extend(p for _, _, p in upper)
        if (
            lower
            and upper
            and (
                access.low > access.high
                or (access.low == access.high and not (access.low_inclusive and access.high_inclusive))
            )
        ):
            access.empty = True
        return access, used
    if eq_prefix:
        return Access("prefix", table_id, index, key=tuple(eq_prefix), label=label), used
    return None


# ---- joins -----------------------------------------------------------------------------------------------


@dataclass(slots=True)
class JoinStep:
    """Bind relation ``rel`` given the relations bound before it."""

    rel: int
    method: str  # index | hash | loop
    table_id: int
    label: str
    src: ColumnRef | None = None  # the bound column whose value is looked up (index, hash)
    dst_pos: int = 0  # the column of `rel` it must equal
    index: IndexSchema | None = None  # index: the index probed
    access: Access | None = None  # hash, loop: how the relation's rows are fetched
    row_filter: Callable[[Row], bool] | None = None
    rows_filter: Callable[[list[Any]], bool] | None = None
    row_preds: list[Pred] = field(default_factory=list)
    rows_preds: list[Pred] = field(default_factory=list)

    def describe(self) -> str:
        if self.method == "index":
            assert self.index is not None and self.src is not None
            text = f"IndexJoin {self.label} using {self.index.name} on {self.src.label}"
        elif self.method == "hash":
            assert self.access is not None and self.src is not None
            text = f"HashJoin {self.label} on {self.src.label} build=({self.access.describe()})"
        else:
            assert self.access is not None
            text = f"NestedLoop {self.label} ({self.access.describe()})"
        filters = self.row_preds + self.rows_preds
        if filters:
            text += " filter " + " AND ".join(ex.describe(p) for p in filters)
        return text


class FragmentPlan:
    """The physical plan of one fragment."""

    __slots__ = ("first", "first_access", "first_filter", "first_preds", "nrel", "steps")

    def __init__(
        self, first: int, first_access: Access, first_preds: list[Pred], steps: list[JoinStep], nrel: int
    ) -> None:
        self.first = first
        self.first_access = first_access
        self.first_preds = first_preds
        self.first_filter = ex.compile_row(first_preds, first)
        self.steps = steps
        self.nrel = nrel

    def describe(self) -> list[str]:
        text = self.first_access.describe()
        if self.first_preds:
            text += " filter " + " AND ".join(ex.describe(p) for p in self.first_preds)
        return [text] + [step.describe() for step in self.steps]

    def first_rows(self, tx: Reader) -> Iterable[Row]:
        rows = self.first_access.rows(tx)
        keep = self.first_filter
        return rows if keep is None else [row for row in rows if keep(row)]

    def bindings(self, tx: Reader) -> Iterator[list[Any]]:
        """Every combination of rows satisfying the fragment, as a list indexed by relation.

        The same list object is yielded each time, mutated: consumers must read it before advancing."""
        rs: list[Any] = [None] * self.nrel
        first = self.first
        steps = self.steps
        if not steps:
            for row in self.first_rows(tx):
                rs[first] = row
                yield rs
            return
        sources = [_StepSource(step, tx) for step in steps]
        for row in self.first_rows(tx):
            rs[first] = row
            yield from _extend(rs, sources, 0)

    def estimate(self, tx: Reader) -> int:
        """Rows the fragment will look at (the row-limit check uses this, as SpacetimeDB does)."""
        total = self.first_access.estimate(tx)
        scanned = total
        for step in self.steps:
            if step.method == "index":
                assert step.index is not None
                if not step.index.unique:
                    distinct = max(1, len(tx.table(step.table_id).index_by_id[step.index.index_id]))
                    total = total * max(1, math.ceil(tx.count(step.table_id) / distinct))
            else:
                size = tx.count(step.table_id)
                scanned += size
                total = total * size
            scanned += total
        return scanned


class _StepSource:
    """Per-execution state of a join step: the hash table or row list of a hash / nested-loop join."""

    __slots__ = ("_rows", "_table", "step", "tx")

    def __init__(self, step: JoinStep, tx: Reader) -> None:
        self.step = step
        self.tx = tx
        self._table: dict[Any, list[Row]] | None = None
        self._rows: list[Row] | None = None

    def candidates(self, rs: list[Any]) -> Iterable[Row]:
        step = self.step
        if step.method == "index":
            assert step.src is not None and step.index is not None
            key = rs[step.src.rel][step.src.pos]
            if len(step.index.columns) == 1:
                rows: Iterable[Row] = self.tx.seek(step.table_id, step.index.index_id, key)
            else:
                rows = self.tx.prefix(step.table_id, step.index.index_id, (key,))
            keep = step.row_filter
            return rows if keep is None else [r for r in rows if keep(r)]
        if step.method == "hash":
            assert step.src is not None
            if self._table is None:
                self._table = {}
                pos = step.dst_pos
                for row in self._fetch():
                    self._table.setdefault(row[pos], []).append(row)
            return self._table.get(rs[step.src.rel][step.src.pos], ())
        if self._rows is None:
            self._rows = list(self._fetch())
        return self._rows

    def _fetch(self) -> Iterable[Row]:
        step = self.step
        assert step.access is not None
        keep = step.row_filter
        rows = step.access.rows(self.tx)
        return rows if keep is None else (r for r in rows if keep(r))


def _extend(rs: list[Any], sources: list[_StepSource], depth: int) -> Iterator[list[Any]]:
    source = sources[depth]
    step = source.step
    rel = step.rel
    check = step.rows_filter
    last = depth + 1 == len(sources)
    for row in source.candidates(rs):
        rs[rel] = row
        if check is not None and not check(rs):
            continue
        if last:
            yield rs
        else:
            yield from _extend(rs, sources, depth + 1)
    rs[rel] = None


def plan_fragment(fragment: Fragment) -> FragmentPlan:
    """Greedy join ordering: best access path first, then index joins, hash joins, nested loops."""
    relations = fragment.relations
    n = len(relations)
    single: dict[int, list[Pred]] = {k: [] for k in range(n)}
    multi: list[Pred] = []
    for pred in fragment.conjuncts:
        rels = ex.relations_of(pred)
        if len(rels) == 1:
            single[next(iter(rels))].append(pred)
        elif not rels:
            single[0].append(pred)  # constant predicates (TRUE/FALSE) filter the first relation read
        else:
            multi.append(pred)
    if n == 1:
        access, residual = choose_access(0, relations[0], single[0])
        return FragmentPlan(0, access, residual, [], 1)
    accesses = {k: choose_access(k, relations[k], single[k]) for k in range(n)}
    first = min(range(n), key=lambda k: (accesses[k][0].rank, k))
    first_access, first_preds = accesses[first]
    bound = {first}
    pending = list(multi)
    steps: list[JoinStep] = []
    while len(bound) < n:
        step = _next_step(relations, bound, pending, accesses, single)
        bound.add(step.rel)
        ready = [p for p in pending if ex.relations_of(p) <= bound]
        pending = [p for p in pending if not ex.relations_of(p) <= bound]
        step.rows_preds = ready
        step.rows_filter = ex.compile_rows(ready)
        step.row_filter = ex.compile_row(step.row_preds, step.rel)
        steps.append(step)
    return FragmentPlan(first, first_access, first_preds, steps, n)


def _next_step(
    relations: tuple[Relation, ...],
    bound: set[int],
    pending: list[Pred],
    accesses: dict[int, tuple[Access, list[Pred]]],
    single: dict[int, list[Pred]],
) -> JoinStep:
    best: tuple[int, JoinStep, Pred] | None = None
    for pred in pending:
        cols = ex.join_equality(pred)
        if cols is None:
            continue
        for src, dst in (cols, cols[::-1]):
            if src.rel not in bound or dst.rel in bound:
                continue
            relation = relations[dst.rel]
            index = probe_index(relation.schema, dst.pos)
            if index is not None:
                rank = 0 if index.unique and len(index.columns) == 1 else 1
                step = JoinStep(dst.rel, "index", relation.table_id, relation.alias, src, dst.pos, index)
                # the probe replaces the relation's access path, so all its own predicates filter the probe
                step.row_preds = list(single[dst.rel])
            else:
                rank = 2
                access, rest = accesses[dst.rel]
                step = JoinStep(
                    dst.rel, "hash", relation.table_id, relation.alias, src, dst.pos, access=access
                )
                step.row_preds = list(rest)
            if best is None or rank < best[0]:
                best = (rank, step, pred)
    if best is not None:
        _, step, used = best
        pending.remove(used)
        return step
    rel = min((k for k in range(len(relations)) if k not in bound), key=lambda k: (accesses[k][0].rank, k))
    access, rest = accesses[rel]
    relation = relations[rel]
    return JoinStep(rel, "loop", relation.table_id, relation.alias, access=access, row_preds=list(rest))


def probe_index(schema: TableSchema, pos: int) -> IndexSchema | None:
    """An index that can find rows by the value of column ``pos`` alone (unique single-column ones first)."""
    exact = schema.index_on((pos,))
    if exact is not None:
        return exact
    for index in schema.indexes:
        if index.columns[0] == pos:
            return index
    return None


# ---- outputs and statements ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StarOutput:
    """Whole rows of the returned relation (``rel`` in the query as written; each fragment records its own
    return relation in ``Fragment.ret``, which is what execution uses)."""

    rel: int


@dataclass(frozen=True, slots=True)
class ColumnsOutput:
    columns: tuple[ColumnRef, ...]
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CountOutput:
    name: str


Output = StarOutput | ColumnsOutput | CountOutput


@dataclass(slots=True)
class SelectPlan:
    """A compiled SELECT (also what SHOW and subscriptions compile to)."""

    fragments: list[Fragment]
    output: Output
    schema: ProductType
    order_by: list[tuple[ColumnRef, bool]] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0
    check_row_limit: bool = False  # the caller is not the owner: st_var.row_limit applies
    return_table: TableSchema | None = None  # for whole-row outputs: the table the rows belong to
    statement: Any = None  # the syntax tree it was compiled from

    @property
    def sql(self) -> str:
        """The statement in canonical SQL (rendered on demand: one-off queries rarely need it)."""
        return self.statement.to_sql() if self.statement is not None else ""

    def key(self) -> str:
        """Canonical identity of the result: two plans with the same key return the same rows."""
        parts = [f.key() for f in self.fragments]
        out = self.output
        if isinstance(out, StarOutput):
            head = f"*{out.rel}"
        elif isinstance(out, CountOutput):
            head = f"count:{out.name}"
        else:
            head = ",".join(f"{c.key()} AS {n}" for c, n in zip(out.columns, out.names, strict=True))
        order = ",".join(f"{c.key()}{' DESC' if d else ''}" for c, d in self.order_by)
        return f"SELECT {head} | {' UNION ALL '.join(parts)} | {order} | {self.limit} | {self.offset}"

    def explain(self) -> list[str]:
        lines: list[str] = []
        for i, fragment in enumerate(self.fragments):
            if len(self.fragments) > 1:
                lines.append(f"Fragment {i}:")
            lines.extend(fragment.plan.describe())
        return lines


@dataclass(slots=True)
class InsertPlan:
    table: TableSchema
    rows: list[Row]
    statement: Any = None


@dataclass(slots=True)
class UpdatePlan:
    table: TableSchema
    fragment: Fragment
    assignments: list[tuple[int, Any]]
    statement: Any = None


@dataclass(slots=True)
class DeletePlan:
    table: TableSchema
    fragment: Fragment
    statement: Any = None


@dataclass(slots=True)
class SetVarPlan:
    name: str
    value: SumValue
    statement: Any = None


Plan = SelectPlan | InsertPlan | UpdatePlan | DeletePlan | SetVarPlan
