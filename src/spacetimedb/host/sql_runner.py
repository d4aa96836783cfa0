"""SQL inside a worker: one-off queries and the ``/sql`` route, run on the host thread.

Reads run under the reader lock. Statements that write (DML, ``SET``) run as a transaction of the host, so they
are logged, broadcast to subscribers and ordered with every other transaction.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from spacetimedb.datastore import MutTx
from spacetimedb.protocol.messages import CallStatus
from spacetimedb.sats import Identity, codec
from spacetimedb.sql import (
    QueryLimits,
    SelectPlan,
    SqlError,
    SqlUnsupportedError,
    compile_statement,
    execute,
    parse_script,
    result_too_large,
)
from spacetimedb.sql.execute import StatementResult
from spacetimedb.sql.run import is_read_only, result_json
from spacetimedb.subscription import TableRows

from .module_host import ModuleHost

Row = tuple[Any, ...]


class NoSpaceError(SqlError):
    """A statement would write to a database that may not (its disk is full)."""


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
        plan = compile_statement(statements[0], tx, caller, is_owner)
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
    for statement in statements:
        started = time.perf_counter()
        if is_read_only(statement):
            with host.db.read_tx() as read:
                tx = host.views.reader(read, caller)
                result = execute(compile_statement(statement, tx, caller, is_owner), tx, limits)
        else:
            result, offset = _write(host, statement, caller, is_owner)
            last_offset = offset if offset is not None else last_offset
        results.append(result_json(result, int((time.perf_counter() - started) * 1_000_000)))
    body = json.dumps(results)
    if limits.max_bytes is not None and len(body) > limits.max_bytes:
        raise result_too_large(limits.max_bytes)
    return body, last_offset


def _write(
    host: ModuleHost, statement: Any, caller: Identity, is_owner: bool
) -> tuple[StatementResult, int | None]:
    target = getattr(statement, "table", None)
    if isinstance(target, str) and host.views.view_named(target) is not None:
        raise SqlUnsupportedError(f"`{target}` is a view: views are read-only (write to the tables it reads)")

    def work(tx: MutTx) -> StatementResult:
        return execute(compile_statement(statement, tx, caller, is_owner), tx)

    outcome = host.transact(work)
    if outcome.status == CallStatus.NO_SPACE:
        raise NoSpaceError(outcome.message or "the database is read-only")
    if outcome.status != CallStatus.COMMITTED:
        raise SqlError(outcome.message or "the statement failed")
    return outcome.value, outcome.offset
