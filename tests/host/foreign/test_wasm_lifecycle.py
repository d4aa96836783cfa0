"""Lifecycle and scheduled reducers of a WASM module: `init` runs at publish, a row of the scheduled table runs
its reducer (with the row as its argument) through the host's scheduler."""

from __future__ import annotations

from spacetimedb.sats import SCHEDULE_AT, U32, U64, RefType, SumValue

from ..helpers import DB, OWNER, LocalDatabases, call, rows, wait_until
from .test_wasm_load import RANGE_IMPORTS
from .wat import module_def_v10, product, reducer, wasm_module

# log(x u32) at 2048 ("log"), timer(scheduled_id u64 auto-inc primary key, scheduled_at ScheduleAt) at 2056
LOG_X = """
  (drop (call $table_id (i32.const 2048) (i32.const 3) (i32.const 8)))
  (i32.store (i32.const 16) (i32.const {x})) (i32.store (i32.const 0) (i32.const 4))
  (drop (call $insert (i32.load (i32.const 8)) (i32.const 16) (i32.const 0)))
  (i32.const 0)
"""
# a timer row due at once: id 0 (the sequence fills it in), ScheduleAt::Time(0)
ARM = """
  (drop (call $table_id (i32.const 2056) (i32.const 5) (i32.const 8)))
  (i64.store (i32.const 16) (i64.const 0)) (i32.store8 (i32.const 24) (i32.const 1))
  (i64.store (i32.const 25) (i64.const 0)) (i32.store (i32.const 0) (i32.const 17))
  (drop (call $insert (i32.load (i32.const 8)) (i32.const 16) (i32.const 0)))
  (i32.const 0)
"""


def test_init_runs_at_publish_and_a_scheduled_row_runs_its_reducer():
    tables = [
        ("log", 0, [], [], [], [], SumValue(1, ()), SumValue(0, ()), [], False),
        (
            "timer",
            1,
            [0],
            [("timer_id", "scheduled_id", SumValue(0, [0]))],
            [(None, SumValue(0, ([0],)))],
            [(None, 0, None, None, None, 1)],
            SumValue(1, ()),
            SumValue(0, ()),
            [],
            False,
        ),
    ]
    module_def = module_def_v10(
        [
            SumValue(
                0,
                (
                    [
                        SumValue(2, product(("x", U32))),
                        SumValue(2, product(("scheduled_id", U64), ("scheduled_at", SCHEDULE_AT))),
                    ],
                ),
            ),
            SumValue(2, tables),
            SumValue(3, [reducer("init"), reducer("arm"), reducer("tick", ("timer", RefType(1)))]),
            SumValue(6, [(None, "timer", 1, "tick")]),
            SumValue(7, [(SumValue(0, ()), "init")]),
        ]
    )
    extra = '(data (i32.const 2048) "log") (data (i32.const 2056) "timer")'
    program = wasm_module(module_def, RANGE_IMPORTS, [LOG_X.format(x=100), ARM, LOG_X.format(x=1)], extra)
    dbs = LocalDatabases(None)
    try:
        dbs.publish(DB, OWNER, program)
        host = dbs.get_or_launch(DB)
        assert host.loaded.module_def.reducers["init"].lifecycle == "init"
        assert rows(host, "log") == [(100,)]
        assert call(host, "arm").ok
        assert wait_until(lambda: (1,) in rows(host, "log"))
        assert wait_until(lambda: rows(host, "timer") == [])  # a one-shot schedule's row goes once it ran
    finally:
        dbs.shutdown()


SCHEDULE_IMPORT = """
  (import "spacetime_10.0" "volatile_nonatomic_schedule_immediate" (func $schedule (param i32 i32 i32 i32)))
"""
# schedule the reducer named at 2064 (its name's length given) with no arguments, then log x
SCHEDULE = (
    """
  (call $schedule (i32.const 2064) (i32.const {length}) (i32.const 0) (i32.const 0))
"""
    + LOG_X
)


def test_volatile_nonatomic_schedule_immediate_runs_the_reducer_after_the_call():
    """Upstream's `volatile_nonatomic_schedule_immediate` (wasm_instance_env.rs): the named reducer runs after
    the current call, in a transaction of its own; an unknown reducer fails the call that asked."""
    tables = [("log", 0, [], [], [], [], SumValue(1, ()), SumValue(0, ()), [], False)]
    module_def = module_def_v10(
        [
            SumValue(0, ([SumValue(2, product(("x", U32)))],)),
            SumValue(2, tables),
            SumValue(3, [reducer("later"), reducer("seven"), reducer("wrong")]),
        ]
    )
    extra = '(data (i32.const 2048) "log") (data (i32.const 2064) "seven") (data (i32.const 2072) "nope")'
    later = SCHEDULE.format(length=5, x=1)
    wrong = SCHEDULE.replace("2064", "2072").format(length=4, x=2)
    program = wasm_module(
        module_def, RANGE_IMPORTS + SCHEDULE_IMPORT, [later, LOG_X.format(x=7), wrong], extra
    )
    dbs = LocalDatabases(None)
    try:
        dbs.publish(DB, OWNER, program)
        host = dbs.get_or_launch(DB)
        assert call(host, "later").ok
        assert wait_until(lambda: sorted(rows(host, "log")) == [(1,), (7,)])
        outcome = call(host, "wrong")
        assert not outcome.ok and "nope" in (outcome.message or "")
        assert sorted(rows(host, "log")) == [(1,), (7,)]
    finally:
        dbs.shutdown()
