"""Hostile WASM modules: an endless loop, memory growth to the limit, syscalls given bad pointers and lengths.
Each fails its own call only: the database keeps serving, and so does a neighbouring database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from spacetimedb.host.database import DatabaseOptions
from spacetimedb.host.module_host import HostOptions
from spacetimedb.protocol.messages import CallStatus
from spacetimedb.sats import U32, SumValue

from ..helpers import OWNER, LocalDatabases, call, ident, rows
from .wat import module_def_v10, product, reducer, wasm_module

pytestmark = pytest.mark.timeout(120)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
HOSTILE_DB = ident(0xBAD)
NEIGHBOUR_DB = ident(0x600D)

IMPORTS = """
  (import "spacetime_10.0" "table_id_from_name" (func $table_id (param i32 i32 i32) (result i32)))
  (import "spacetime_10.0" "datastore_insert_bsatn" (func $insert (param i32 i32 i32) (result i32)))
"""
REDUCERS = [
    # spin: an endless loop
    "(loop $forever (br $forever)) (i32.const 0)",
    # grow: take memory until the store refuses, then trap
    "(block $full (loop $more (br_if $full (i32.eq (memory.grow (i32.const 16)) (i32.const -1))) (br $more)))"
    " unreachable",
    # bad_pointer: a table name that lies past the end of memory
    "(call $table_id (i32.const 0xfffffff0) (i32.const 100) (i32.const 0))",
    # bad_length: a sink write whose length (read from memory) runs past the end of memory
    "(i32.store (i32.const 0) (i32.const 0x7fffffff))"
    " (call $sink_write (local.get $err) (i32.const 16) (i32.const 0))",
    # write_then_trap: insert a row into `t`, then trap: the row must not stay
    "(drop (call $table_id (i32.const 2048) (i32.const 1) (i32.const 8)))"
    " (i32.store (i32.const 16) (i32.const 7)) (i32.store (i32.const 0) (i32.const 4))"
    " (drop (call $insert (i32.load (i32.const 8)) (i32.const 16) (i32.const 0))) unreachable",
    # ok
    "(i32.const 0)",
    # recurse: a call that never returns, until the stack is exhausted
    "(call $recurse (i32.const 0))",
]
NAMES = ["spin", "grow", "bad_pointer", "bad_length", "write_then_trap", "ok", "recurse"]
RECURSE = "(func $recurse (param i32) (result i32) (call $recurse (i32.add (local.get 0) (i32.const 1))))"


def hostile_program() -> bytes:
    table = ("t", 0, [], [], [], [], SumValue(1, ()), SumValue(0, ()), [], False)
    module_def = module_def_v10(
        [
            SumValue(0, ([SumValue(2, product(("x", U32)))],)),
            SumValue(2, [table]),
            SumValue(3, [reducer(name) for name in NAMES]),
        ]
    )
    return wasm_module(module_def, IMPORTS, REDUCERS, extra=f'(data (i32.const 2048) "t") {RECURSE}')


@pytest.fixture(scope="module")
def databases() -> Iterator[LocalDatabases]:
    options = DatabaseOptions(host=HostOptions(reducer_budget_seconds=0.5, hard_grace_seconds=30))
    dbs = LocalDatabases(None, options)
    dbs.publish(HOSTILE_DB, OWNER, hostile_program())
    dbs.publish(NEIGHBOUR_DB, OWNER, (FIXTURES / "keynote.wasm").read_bytes())
    assert call(dbs.get_or_launch(NEIGHBOUR_DB), "seed", 2, 10).ok
    yield dbs
    dbs.shutdown()


def assert_both_still_serve(dbs: LocalDatabases) -> None:
    assert call(dbs.get_or_launch(HOSTILE_DB), "ok").ok
    neighbour = dbs.get_or_launch(NEIGHBOUR_DB)
    assert call(neighbour, "transfer", 0, 1, 1).ok
    assert sum(balance for _, balance in rows(neighbour, "accounts")) == 20


def test_an_endless_loop_is_stopped_at_the_budget(databases: LocalDatabases):
    outcome = call(databases.get_or_launch(HOSTILE_DB), "spin")
    assert outcome.status == CallStatus.OUT_OF_BUDGET, outcome
    assert_both_still_serve(databases)


def test_memory_growth_stops_at_the_limit_and_fails_the_call(databases: LocalDatabases):
    outcome = call(databases.get_or_launch(HOSTILE_DB), "grow")
    assert outcome.status == CallStatus.FAILED, outcome
    assert "unreachable" in (outcome.message or "")
    assert_both_still_serve(databases)


@pytest.mark.parametrize("reducer_name", ["bad_pointer", "bad_length"])
def test_a_syscall_given_a_bad_pointer_or_length_fails_the_call(databases: LocalDatabases, reducer_name: str):
    outcome = call(databases.get_or_launch(HOSTILE_DB), reducer_name)
    assert outcome.status == CallStatus.FAILED, outcome
    assert "outside the module's memory" in (outcome.message or "")
    assert_both_still_serve(databases)


def test_endless_recursion_exhausts_the_stack_and_fails_the_call(databases: LocalDatabases):
    outcome = call(databases.get_or_launch(HOSTILE_DB), "recurse")
    assert outcome.status == CallStatus.FAILED, outcome
    assert "stack" in (outcome.message or "")
    assert_both_still_serve(databases)


def test_a_trap_rolls_back_what_the_call_wrote(databases: LocalDatabases):
    host = databases.get_or_launch(HOSTILE_DB)
    outcome = call(host, "write_then_trap")
    assert outcome.status == CallStatus.FAILED, outcome
    assert rows(host, "t") == []
    assert_both_still_serve(databases)
