"""Views of a WASM module: an anonymous view returning bare rows (code 0) and a per-caller one returning its
result header first (code 2), each number 0 of its kind as SpacetimeDB numbers them, read through SQL as a
client would, over the module's own syscalls."""

from __future__ import annotations

import json

from spacetimedb.host.sql_runner import run_sql
from spacetimedb.sats import STRING, U32, ArrayType, RefType, SumValue, codec, option
from spacetimedb.sats.meta import type_to_value

from ..helpers import DB, OWNER, LocalDatabases, call
from .test_wasm_load import FILL, RANGE_IMPORTS
from .wat import module_def_v10, product, reducer, wasm_module, wat_bytes

VIEW_IMPORTS = """
  (import "spacetime_10.0" "datastore_table_scan_bsatn" (func $scan (param i32 i32) (result i32)))
  (import "spacetime_10.0" "row_iter_bsatn_advance" (func $advance (param i32 i32 i32) (result i32)))
"""
# rows of `t` at 4096 (their BSATN array: a u32 count at 4092, then the rows), their byte length returned
VIEW_EXPORTS = """
  (func $scan_into (result i32)
    (drop (call $table_id (i32.const 2048) (i32.const 1) (i32.const 8)))
    (drop (call $scan (i32.load (i32.const 8)) (i32.const 12)))
    (i32.store (i32.const 0) (i32.const 1024))
    (drop (call $advance (i32.load (i32.const 12)) (i32.const 4096) (i32.const 0)))
    (i32.store (i32.const 4092) (i32.div_u (i32.load (i32.const 0)) (i32.const 4)))
    (i32.load (i32.const 0)))
  (func (export "__call_view_anon__") (param i32 i32 i32) (result i32)
    ;; anonymous view 1 returns a query (header RawSql), written at 3072
    (if (i32.eq (local.get 0) (i32.const 1)) (then
      (i32.store (i32.const 4) (i32.const {query_len}))
      (drop (call $sink_write (local.get 2) (i32.const 3072) (i32.const 4)))
      (return (i32.const 2))))
    (if (local.get 0) (then (return (i32.const 1))))
    (i32.store (i32.const 4) (i32.add (call $scan_into) (i32.const 4)))
    (drop (call $sink_write (local.get 2) (i32.const 4092) (i32.const 4)))
    (i32.const 0))
  (func (export "__call_view__") (param i32 i64 i64 i64 i64 i32 i32) (result i32)
    (if (local.get 0) (then (return (i32.const 1))))  ;; its only per-caller view is number 0 too
    (i32.store (i32.const 4) (i32.add (call $scan_into) (i32.const 5)))
    (i32.store8 (i32.const 4091) (i32.const 0))
    (drop (call $sink_write (local.get 6) (i32.const 4091) (i32.const 4)))
    (i32.const 2))
  (data (i32.const 2048) "t")
  (data (i32.const 3072) "{query}")
"""
# ViewResultHeader::RawSql, then the query as a BSATN string
QUERY = b"\x01" + codec(STRING).encode("SELECT * FROM t WHERE x > 3")


def test_views_of_a_wasm_module_read_through_sql():
    table = ("t", 0, [], [], [], [], SumValue(1, ()), SumValue(0, ()), [], False)
    views = [
        ("everything", 0, True, True, product(), type_to_value(ArrayType(RefType(0)))),
        ("firstOne", 0, True, False, product(), type_to_value(option(RefType(0)))),
        ("bigOnes", 1, True, True, product(), type_to_value(ArrayType(RefType(0)))),
    ]
    module_def = module_def_v10(
        [
            SumValue(0, ([SumValue(2, product(("x", U32)))],)),
            SumValue(2, [table]),
            SumValue(3, [reducer("fill")]),
            SumValue(5, views),
        ]
    )
    exports = VIEW_EXPORTS.replace("{query_len}", str(len(QUERY))).replace("{query}", wat_bytes(QUERY))
    program = wasm_module(module_def, RANGE_IMPORTS + VIEW_IMPORTS, [FILL], exports)
    dbs = LocalDatabases(None)
    try:
        dbs.publish(DB, OWNER, program)
        host = dbs.get_or_launch(DB)
        views = host.loaded.module_def.views
        assert sorted(views) == ["big_ones", "everything", "first_one"]
        assert sorted(v.index for v in views.values()) == [0, 1, 2]  # the host's numbering is its own
        assert [v.call_id for v in views.values()] == [0, 0, 1]  # SpacetimeDB numbers the two kinds apart
        assert call(host, "fill").ok
        database = dbs.database(DB)

        def rows(query: str) -> list[list[int]]:
            body, _ = database.on_host_thread(lambda: run_sql(host, query, OWNER, True))
            return json.loads(body)[0]["rows"]

        assert sorted(rows("SELECT * FROM everything")) == [[1], [2], [3], [4], [5]]
        assert rows("SELECT * FROM first_one") == [[1]]
        assert sorted(rows("SELECT * FROM big_ones")) == [[4], [5]]  # the query a view returned
    finally:
        dbs.shutdown()
