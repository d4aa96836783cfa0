"""The example modules under examples/ load and behave as their docstrings say."""

from __future__ import annotations

import pytest

from spacetimedb.module import load_module
from spacetimedb.sats import ScheduleAt, TimeDuration

from .helpers import ALICE, BOB, DATABASE, REMINDERS, Db


def test_scheduled_example_module_runs() -> None:
    db = Db(load_module(REMINDERS.read_bytes(), name="reminders.py"))
    db.call("init", sender=DATABASE)
    timer = db.rows("tick_timer")
    assert timer == [(1, ScheduleAt.interval(TimeDuration.from_seconds(1)))]
    db.call("tick", timer[0], sender=DATABASE)
    db.call("tick", timer[0], sender=DATABASE)
    assert db.rows("counter") == [("ticks", 2)]
    with pytest.raises(PermissionError):
        db.call("tick", timer[0], sender=ALICE)
    db.call("remind_me", "stretch", 60, sender=ALICE)
    (reminder,) = db.rows("reminder")
    assert reminder[1].tag == ScheduleAt.TIME and reminder[2:] == (ALICE, "stretch")
    db.call("send_reminder", reminder, sender=DATABASE)
    assert [(n[1], n[2]) for n in db.rows("notice")] == [(ALICE, "stretch")]
    for room, points, who in ((1, 5, ALICE), (1, 50, BOB), (2, 70, ALICE), (1, 20, ALICE)):
        db.call("record_score", room, points, sender=who)
    with db.with_ctx() as ctx:
        best = [(s.room, s.points) for s in ctx.db.score.by_room_points.filter((1, range(10, 100)))]
        assert best == [(1, 20), (1, 50)]
        assert [s.points for s in ctx.db.score.by_room_points.filter((1, 50))] == [50]
    db.call("clear_room", 1)
    assert [(r[1], r[3]) for r in db.rows("score")] == [(2, 70)]
