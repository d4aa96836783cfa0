"""SQL inside a worker: one-off queries and the ``/sql`` route, run on the host thread.

Reads run under the reader lock. Statements that write (DML, ``SET``) run as a transaction of the host, so they
are logged, broadcast to subscribers and ordered with every other transaction.
"""

from __future__ import annotations

import time
from typing import Any

from spacetimedb.datastore import MutTx
from spacetimedb.protocol.messages import COMMITTED
from spacetimedb.sats import Identity, codec
from spacetimedb.sql import (
    SelectPlan,
    SqlError,
    SqlUnsupportedError,
    compile_statement,
    execute,
    parse_script,
)
from spacetimedb.sql.execute import StatementResult
from spacetimedb.sql.run import is_read_only, result_json
from spacetimedb.subscription import TableRows

from .module_host import ModuleHost


def one_off_rows(host: ModuleHost, query: str, caller: Identity, is_owner: bool) -> list[TableRows]:
    """The rows of a single SELECT, encoded as BSATN of its result type."""
    statements = parse_script(query)
    if len(statements) != 1 or not is_read_only(statements[0]):
        raise SqlUnsupportedError("a one-off query is exactly one SELECT statement")
    with host.db.read_tx() as tx:
        plan = compile_statement(statements[0], tx, caller, is_owner)
        assert isinstance(plan, SelectPlan)
        result = execute(plan, tx)
    encode = codec(result.schema).encode
    table = plan.return_table
    name = table.name if table is not None else "result"
    return [
        TableRows(
            table.table_id if table is not None else 0, name, result.schema, [encode(r) for r in result.rows]
        )
    ]


def run_sql(
    host: ModuleHost, text: str, caller: Identity, is_owner: bool
) -> tuple[list[dict[str, Any]], int | None]:
    """Run a ``;``-separated script (on the host thread); returns the ``/sql`` JSON and the offset of the last
    write (if any).

    Statements run in order, each in its own transaction; the first failure raises ``SqlError`` (statements
    before it stay committed, as in SpacetimeDB)."""
    statements = parse_script(text)
    if not statements:
        raise SqlUnsupportedError("Empty SQL query")
    results = []
    last_offset = None
    for statement in statements:
        started = time.perf_counter()
        if is_read_only(statement):
            with host.db.read_tx() as tx:
                result = execute(compile_statement(statement, tx, caller, is_owner), tx)
        else:
            result, offset = _write(host, statement, caller, is_owner)
            last_offset = offset if offset is not None else last_offset
        results.append(result_json(result, int((time.perf_counter() - started) * 1_000_000)))
    return results, last_offset


def _write(
    host: ModuleHost, statement: Any, caller: Identity, is_owner: bool
) -> tuple[StatementResult, int | None]:
    def work(tx: MutTx) -> StatementResult:
        return execute(compile_statement(statement, tx, caller, is_owner), tx)

    outcome = host.transact(work)
    if outcome.status != COMMITTED:
        raise SqlError(outcome.message or "the statement failed")
    return outcome.value, outcome.offset
