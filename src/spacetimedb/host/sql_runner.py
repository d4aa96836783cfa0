"""SQL inside a worker: one-off queries and the ``/sql`` route, run on the host thread.

``run_sql`` answers ``/sql`` with JSON; ``run_sql_typed`` and ``describe_sql`` answer the PostgreSQL front end
with typed rows (BSATN) and with statements' parameter and result types. Reads run under the reader lock. Statements that write (DML, ``SET``) run as a transaction of the host, so they
are logged, broadcast to subscribers and ordered with every other transaction.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from spacetimedb.datastore import MutTx
from spacetimedb.module import ModuleDef
from spacetimedb.protocol.messages import CallStatus
from spacetimedb.sats import AlgebraicType, Identity, ProductType, codec
from spacetimedb.sql import (
    Accessors,
    QueryLimits,
    SelectPlan,
    SqlError,
    SqlUnsupportedError,
    ast,
    compile_statement,
    execute,
    parse_script,
    result_too_large,
)
from spacetimedb.sql.execute import StatementResult, Stats
from spacetimedb.sql.params import Bindings
from spacetimedb.sql.run import is_read_only, result_json
from spacetimedb.subscription import TableRows

from .module_host import ModuleHost

Row = tuple[Any, ...]


class NoSpaceError(SqlError):
    """A statement would write to a database that may not (its disk is full)."""


def sql_accessors(host: ModuleHost) -> Accessors:
    """The accessors of the module's tables, views and columns that differ from their canonical names, which SQL
    accepts too (SpacetimeDB: crates/smoketests/tests/cluster/sql.rs, the accessor and canonical name tests)."""
    return _accessors_of(host.loaded.module_def)


@functools.lru_cache(maxsize=64)  # a module definition never changes: computed once per loaded module
def _accessors_of(module_def: ModuleDef) -> Accessors:
    tables = {t.accessor_name: t.name for t in module_def.tables.values() if t.accessor_name != t.name}
    tables |= {v.func.__name__: v.name for v in module_def.views.values() if v.func.__name__ != v.name}
    columns = {
        table.name: {c.accessor_name: c.name for c in table.columns if c.accessor_name != c.name}
        for table in module_def.tables.values()
        if any(c.accessor_name != c.name for c in table.columns)
    }
    return Accessors(tables, columns)


def query_limits(host: ModuleHost) -> QueryLimits:
    options = host.options
    return QueryLimits(options.query_row_limit, options.query_byte_limit)


def encode_within(encode: Callable[[Row], bytes], rows: Iterable[Row], max_bytes: int | None) -> list[bytes]:
    """``rows`` encoded, refusing (``SqlLimitError``) as soon as they pass ``max_bytes`` in all."""
    if max_bytes is None:
        return [encode(row) for row in rows]
    out = []
    total = 0
    for row in rows:
        encoded = encode(row)
        total += len(encoded)
        if total > max_bytes:
            raise result_too_large(max_bytes)
        out.append(encoded)
    return out


def one_off_rows(host: ModuleHost, query: str, caller: Identity, is_owner: bool) -> list[TableRows]:
    """The rows of a single SELECT, encoded as BSATN of its result type, within the query limits."""
    statements = parse_script(query)
    if len(statements) != 1 or not is_read_only(statements[0]):
        raise SqlUnsupportedError("a one-off query is exactly one SELECT statement")
    limits = query_limits(host)
    with host.db.read_tx() as read:
        tx = host.views.reader(read, caller)
        plan = compile_statement(statements[0], tx, caller, is_owner, accessors=sql_accessors(host))
        assert isinstance(plan, SelectPlan)
        result = execute(plan, tx, limits)
    rows = encode_within(codec(result.schema).encode, result.rows, limits.max_bytes)
    table = plan.return_table
    name = table.name if table is not None else "result"
    return [TableRows(table.table_id if table is not None else 0, name, result.schema, rows)]


def run_sql(host: ModuleHost, text: str, caller: Identity, is_owner: bool) -> tuple[str, int | None]:
    """Run a ``;``-separated script (on the host thread) within the query limits; returns the ``/sql`` JSON
    text and the offset of the last write (if any).

    Statements run in order, each in its own transaction; the first failure raises ``SqlError`` (statements
    before it stay committed, as in SpacetimeDB)."""
    statements = parse_script(text)
    if not statements:
        raise SqlUnsupportedError("Empty SQL query")
    limits = query_limits(host)
    results = []
    last_offset = None
    for result, micros, offset in _run_each(host, statements, caller, is_owner, limits, lambda: None):
        last_offset = offset if offset is not None else last_offset
        results.append(result_json(result, micros))
    body = json.dumps(results)
    if limits.max_bytes is not None and len(body) > limits.max_bytes:
        raise result_too_large(limits.max_bytes)
    return body, last_offset


@dataclass(frozen=True, slots=True)
class TypedResult:
    """One statement's answer with its rows as BSATN of ``schema`` (empty for DML and SET); ``command`` is its
    verb (``SELECT``, ``INSERT``, ...)."""

    command: str
    schema: ProductType
    rows: list[bytes]
    stats: Stats
    micros: int


@dataclass(slots=True)
class TypedOutcome:
    """What a script did: the answers of the statements that ran, then the error that stopped it (if any)."""

    results: list[TypedResult] = field(default_factory=list)
    error: SqlError | None = None
    offset: int | None = None


_COMMANDS = {
    ast.Select: "SELECT",
    ast.Union: "SELECT",
    ast.ShowVar: "SHOW",
    ast.Insert: "INSERT",
    ast.Update: "UPDATE",
    ast.Delete: "DELETE",
    ast.SetVar: "SET",
}


def run_sql_typed(
    host: ModuleHost, text: str, caller: Identity, is_owner: bool, params: Sequence[ast.Literal] = ()
) -> TypedOutcome:
    """Run a script as ``run_sql`` does (same rules, limits and messages), keeping each statement's rows typed.
    ``params`` are the values of ``$1``, ``$2``, ... An empty script runs nothing."""
    outcome = TypedOutcome()
    limits = query_limits(host)
    budget = [limits.max_bytes]
    try:
        statements = parse_script(text)
        each = _run_each(host, statements, caller, is_owner, limits, lambda: Bindings(params))
        for statement, (result, micros, offset) in zip(statements, each, strict=False):
            outcome.offset = offset if offset is not None else outcome.offset
            rows = _encode_budgeted(result, budget, limits.max_bytes)
            outcome.results.append(
                TypedResult(_COMMANDS[type(statement)], result.schema, rows, result.stats, micros)
            )
    except SqlError as exc:
        outcome.error = exc
    return outcome


def _encode_budgeted(result: StatementResult, budget: list[int | None], max_bytes: int | None) -> list[bytes]:
    """The rows as BSATN; all the statements of a script together stay within the byte limit."""
    rows = encode_within(codec(result.schema).encode, result.rows, budget[0])
    if budget[0] is not None and max_bytes is not None:
        budget[0] -= sum(map(len, rows))
    return rows


def describe_sql(
    host: ModuleHost, text: str, caller: Identity, is_owner: bool
) -> tuple[list[AlgebraicType], ProductType | None]:
    """The parameter types and the result type (None when it returns no rows) of a one-statement script,
    checked for ``caller`` as running it would be (names, visibility, types, ownership for DML)."""
    statements = parse_script(text)
    if not statements:
        return [], None
    if len(statements) > 1:
        raise SqlUnsupportedError("cannot insert multiple commands into a prepared statement")
    bindings = Bindings(None)
    with host.db.read_tx() as read:
        reader = host.views.reader(read, caller)
        plan = compile_statement(statements[0], reader, caller, is_owner, bindings, sql_accessors(host))
    row_type = plan.schema if isinstance(plan, SelectPlan) else None
    return bindings.ordered_types(), row_type


def _run_each(
    host: ModuleHost,
    statements: Sequence[ast.Statement],
    caller: Identity,
    is_owner: bool,
    limits: QueryLimits,
    bindings: Callable[[], Bindings | None],
) -> Iterator[tuple[StatementResult, int, int | None]]:
    """Run the statements in order, each in its own transaction: (result, microseconds, write offset) each."""
    for statement in statements:
        host.check_budget()  # (a write before may have run out of it while it committed)
        started = time.perf_counter()
        offset = None
        if is_read_only(statement):
            with host.db.read_tx() as read:
                tx = host.views.reader(read, caller)  # views read as tables, for this caller
                plan = compile_statement(statement, tx, caller, is_owner, bindings(), sql_accessors(host))
                result = execute(plan, tx, limits)
        else:
            result, offset = _write(host, statement, caller, is_owner, bindings())
        yield result, int((time.perf_counter() - started) * 1_000_000), offset


def _write(
    host: ModuleHost, statement: Any, caller: Identity, is_owner: bool, bindings: Bindings | None
) -> tuple[StatementResult, int | None]:
    target = getattr(statement, "table", None)
    if isinstance(target, str) and host.views.view_named(target) is not None:
        raise SqlUnsupportedError(f"`{target}` is a view: views are read-only (write to the tables it reads)")
    failures: list[SqlError] = []

    def work(tx: MutTx) -> StatementResult:
        try:
            return execute(
                compile_statement(statement, tx, caller, is_owner, bindings, sql_accessors(host)), tx
            )
        except SqlError as exc:
            failures.append(exc)  # its class says what kind of failure it was (syntax, permission, ...)
            raise

    outcome = host.transact(work)
    if outcome.status == CallStatus.NO_SPACE:
        raise NoSpaceError(outcome.message or "the database is read-only")
    if outcome.status != CallStatus.COMMITTED:
        kind = type(failures[0]) if failures else SqlError
        raise kind(outcome.message or "the statement failed")
    return outcome.value, outcome.offset
