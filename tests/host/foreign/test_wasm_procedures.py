"""Procedures of a WASM module: a transaction the procedure begins and commits itself (SpacetimeDB's procedure
ABI), one it leaves open (rolled back), HTTP through the host's hook, and a returned value."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest

from spacetimedb.host.database import Database
from spacetimedb.host.foreign.abi import HTTP_REQUEST
from spacetimedb.host.procedures import ProcedureOutcome, ProcedureRequest
from spacetimedb.module import AuthCtx, HttpRequest, HttpResponse
from spacetimedb.protocol.messages import COMMITTED
from spacetimedb.sats import BYTES, U32, ConnectionId, SumValue, codec
from spacetimedb.sats.meta import type_to_value

from ..helpers import DB, OWNER, rows
from .test_wasm_load import RANGE_IMPORTS
from .wat import module_def_v10, product, reducer, wasm_module, wat_bytes

GET = codec(HTTP_REQUEST).encode(
    (SumValue(0, ()), ([("accept", b"text/plain")],), None, "http://example.com/x", SumValue(2, ()))
)
IMPORTS = (
    RANGE_IMPORTS
    + """
  (import "spacetime_10.0" "bytes_source_read" (func $source_read (param i32 i32 i32) (result i32)))
  (import "spacetime_10.3" "procedure_start_mut_tx" (func $start (param i32) (result i32)))
  (import "spacetime_10.3" "procedure_commit_mut_tx" (func $commit (result i32)))
  (import "spacetime_10.3" "procedure_http_request" (func $http (param i32 i32 i32 i32 i32) (result i32)))
"""
)
INSERT_42 = """
    (drop (call $table_id (i32.const 2048) (i32.const 1) (i32.const 8)))
    (i32.store (i32.const 16) (i32.const 42)) (i32.store (i32.const 0) (i32.const 4))
    (drop (call $insert (i32.load (i32.const 8)) (i32.const 16) (i32.const 0)))
"""
PROCEDURES = f"""
  (data (i32.const 2048) "t")
  (data (i32.const 3072) "{wat_bytes(GET)}")
  (func (export "__call_procedure__")
    (param $id i32) (param i64 i64 i64 i64 i64 i64 i64) (param $args i32) (param $result i32) (result i32)
    ;; 0 commit_one: start, insert 42, commit, return the u32 7
    (if (i32.eqz (local.get $id)) (then
      (drop (call $start (i32.const 32)))
      {INSERT_42}
      (drop (call $commit))
      (i32.store (i32.const 64) (i32.const 7)) (i32.store (i32.const 0) (i32.const 4))
      (drop (call $sink_write (local.get $result) (i32.const 64) (i32.const 0)))
      (return (i32.const 0))))
    ;; 1 left_open: start, insert 42, return without committing
    (if (i32.eq (local.get $id) (i32.const 1)) (then
      (drop (call $start (i32.const 32)))
      {INSERT_42}
      (i32.store (i32.const 64) (i32.const 0)) (i32.store (i32.const 0) (i32.const 4))
      (drop (call $sink_write (local.get $result) (i32.const 64) (i32.const 0)))
      (return (i32.const 0))))
    ;; 2 fetch: GET the request at 3072, return the response body as bytes (a u32 length, then the bytes)
    (drop (call $http (i32.const 3072) (i32.const {len(GET)}) (i32.const 0) (i32.const 0) (i32.const 40)))
    (i32.store (i32.const 0) (i32.const 1024))
    (drop (call $source_read (i32.load (i32.const 44)) (i32.const 8192) (i32.const 0)))
    (i32.store (i32.const 8188) (i32.load (i32.const 0)))
    (i32.store (i32.const 4) (i32.add (i32.load (i32.const 0)) (i32.const 4)))
    (drop (call $sink_write (local.get $result) (i32.const 8188) (i32.const 4)))
    (i32.const 0))
"""


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    table = ("t", 0, [], [], [], [], SumValue(1, ()), SumValue(0, ()), [], False)
    procedures = [
        ("commitOne", product(), type_to_value(U32), SumValue(1, ())),
        ("leftOpen", product(), type_to_value(U32), SumValue(1, ())),
        ("fetch", product(), type_to_value(BYTES), SumValue(1, ())),
    ]
    module_def = module_def_v10(
        [
            SumValue(0, ([SumValue(2, product(("x", U32)))],)),
            SumValue(2, [table]),
            SumValue(3, [reducer("noop")]),
            SumValue(4, procedures),
        ]
    )
    program = wasm_module(module_def, IMPORTS, ["(i32.const 0)"], PROCEDURES)
    database = Database.create(tmp_path / "db", DB, OWNER, program)
    yield database
    database.shutdown()


def run(database: Database, name: str) -> ProcedureOutcome:
    done: Future[ProcedureOutcome] = Future()
    database.procedures.call(
        ProcedureRequest(name, [], True, OWNER, ConnectionId(7), AuthCtx(None), done.set_result)
    )
    return done.result(10)


def test_a_procedure_commits_its_own_transaction_and_returns_a_value(database: Database):
    outcome = run(database, "commit_one")
    assert outcome.status == COMMITTED, outcome
    assert outcome.value == 7
    assert rows(database.host, "t") == [(42,)]


def test_a_transaction_left_open_is_rolled_back(database: Database):
    outcome = run(database, "left_open")
    assert outcome.status == COMMITTED, outcome
    assert rows(database.host, "t") == []
    assert run(database, "commit_one").status == COMMITTED  # the host thread is free again


def test_http_goes_through_the_hosts_hook(database: Database):
    sent: list[HttpRequest] = []

    def send(fetch: int, request: HttpRequest) -> None:
        sent.append(request)
        database.procedures.http_answer(fetch, HttpResponse(200, (("x", "y"),), b"hello"), None)

    database.procedures.send_http = send
    outcome = run(database, "fetch")
    assert outcome.status == COMMITTED, outcome
    assert outcome.value == b"hello"
    assert (sent[0].method, sent[0].url, sent[0].headers) == (
        "GET",
        "http://example.com/x",
        (("accept", "text/plain"),),
    )
