"""Running a ``;``-separated script the way the HTTP ``/sql`` route does, returning its JSON body."""

from __future__ import annotations

import time
from typing import Any, Protocol

from spacetimedb.datastore import MutTx
from spacetimedb.sats import Identity
from spacetimedb.sats.json import json_codec
from spacetimedb.sats.meta import type_to_json

from . import ast
from .compile import compile_statement
from .errors import SqlUnsupportedError
from .execute import StatementResult, execute
from .parser import parse_script
from .plan import Reader


class ReadView(Reader, Protocol):
    def release(self) -> None: ...


class SqlBackend(Protocol):
    """Where ``run_sql`` gets its transactions. ``Datastore`` and ``RelationalDB`` fit as they are (the latter
    through its ``commit_tx``); the server passes an adapter whose ``commit`` makes the transaction durable and
    broadcasts it to subscribers, like a reducer's."""

    def begin_tx(self) -> ReadView: ...
    def begin_mut_tx(self) -> MutTx: ...
    def commit(self, tx: MutTx) -> Any: ...
    def rollback(self, tx: MutTx) -> None: ...


def _commit(backend: Any, tx: MutTx) -> None:
    # RelationalDB names it commit_tx (it also logs the transaction); Datastore and adapters name it commit
    commit = getattr(backend, "commit", None)
    if commit is None:
        commit = backend.commit_tx
    commit(tx)


def result_json(result: StatementResult, micros: int) -> dict[str, Any]:
    """One element of the ``/sql`` reply."""
    to_json = json_codec(result.schema).to_json_untyped
    return {
        "schema": type_to_json(result.schema)["Product"],
        "rows": [to_json(row) for row in result.rows],
        "total_duration_micros": micros,
        "stats": result.stats.to_json(),
    }


def is_read_only(statement: ast.Statement) -> bool:
    """True for statements that only read (SELECT, UNION, SHOW): they run on a read transaction."""
    return isinstance(statement, ast.Select | ast.Union | ast.ShowVar)


def run_statement(
    backend: SqlBackend, statement: ast.Statement, caller: Identity, is_owner: bool
) -> StatementResult:
    """Compile and run one statement in its own transaction (read-only for SELECT and SHOW)."""
    if is_read_only(statement):
        view = backend.begin_tx()
        try:
            return execute(compile_statement(statement, view, caller, is_owner), view)
        finally:
            view.release()
    tx = backend.begin_mut_tx()
    try:
        result = execute(compile_statement(statement, tx, caller, is_owner), tx)
    except BaseException:
        backend.rollback(tx)
        raise
    _commit(backend, tx)
    return result


def run_sql(backend: SqlBackend | Any, text: str, caller: Identity, is_owner: bool) -> list[dict[str, Any]]:
    """Run every statement of ``text`` in order, each in its own transaction, and return the ``/sql`` JSON:
    ``[{"schema", "rows", "total_duration_micros", "stats"}, ...]``.

    The first failing statement raises its ``SqlError``; statements before it stay committed (as with
    SpacetimeDB, there is no script-wide transaction)."""
    statements = parse_script(text)
    if not statements:
        raise SqlUnsupportedError("Empty SQL query")
    results = []
    for statement in statements:
        start = time.perf_counter()
        result = run_statement(backend, statement, caller, is_owner)
        micros = int((time.perf_counter() - start) * 1_000_000)
        results.append(result_json(result, micros))
    return results
