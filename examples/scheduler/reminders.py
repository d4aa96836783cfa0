"""A module with scheduled reducers and a multi-column index.

- ``tick`` runs every second (an interval schedule inserted by ``init``) and counts its runs;
- ``remind_me`` schedules a one-shot ``send_reminder`` call ``delay_seconds`` from now;
- scores are indexed by (room, points), so ``best_scores`` reads one room's scores above a threshold.
"""

from typing import Annotated

from spacetimedb import (
    AutoInc,
    Identity,
    Index,
    PrimaryKey,
    Range,
    ReducerContext,
    ScheduleAt,
    TimeDuration,
    Timestamp,
    log,
    reducer,
    table,
    u32,
    u64,
)


@table(scheduled="tick")
class TickTimer:
    scheduled_id: Annotated[u64, PrimaryKey, AutoInc]
    scheduled_at: ScheduleAt


@table(scheduled="send_reminder")
class Reminder:
    scheduled_id: Annotated[u64, PrimaryKey, AutoInc]
    scheduled_at: ScheduleAt
    owner: Identity
    text: str


@table(public=True)
class Notice:
    id: Annotated[u64, PrimaryKey, AutoInc]
    owner: Identity
    text: str
    delivered: Timestamp


@table
class Counter:
    name: Annotated[str, PrimaryKey]
    count: u64


@table(public=True, indexes=[Index.btree("room", "points", name="by_room_points")])
class Score:
    id: Annotated[u64, PrimaryKey, AutoInc]
    room: u32
    player: Identity
    points: u32 = 0


def _only_the_scheduler(ctx: ReducerContext, reducer_name: str) -> None:
    # scheduled reducers can also be called by clients; these ones should not be
    if ctx.sender != ctx.identity:
        raise PermissionError(f"{reducer_name} is called by the scheduler only")


@reducer(lifecycle="init")
def init(ctx: ReducerContext) -> None:
    every_second = ScheduleAt.interval(TimeDuration.from_seconds(1))
    ctx.db.tick_timer.insert(TickTimer(scheduled_id=0, scheduled_at=every_second))
    ctx.db.counter.insert(Counter(name="ticks", count=0))


@reducer
def tick(ctx: ReducerContext, timer: TickTimer) -> None:
    _only_the_scheduler(ctx, "tick")
    counter = ctx.db.counter.name.find("ticks")
    counter.count += 1
    ctx.db.counter.name.update(counter)
    log.debug(f"tick {counter.count} from timer {timer.scheduled_id}")


@reducer
def remind_me(ctx: ReducerContext, text: str, delay_seconds: u32) -> None:
    when = ScheduleAt.time(ctx.timestamp + TimeDuration.from_seconds(delay_seconds))
    ctx.db.reminder.insert(Reminder(scheduled_id=0, scheduled_at=when, owner=ctx.sender, text=text))


@reducer
def send_reminder(ctx: ReducerContext, reminder: Reminder) -> None:
    _only_the_scheduler(ctx, "send_reminder")
    ctx.db.notice.insert(Notice(id=0, owner=reminder.owner, text=reminder.text, delivered=ctx.timestamp))


@reducer
def record_score(ctx: ReducerContext, room: u32, points: u32) -> None:
    ctx.db.score.insert(Score(id=0, room=room, player=ctx.sender, points=points))


@reducer
def best_scores(ctx: ReducerContext, room: u32, at_least: u32) -> None:
    for score in ctx.db.score.by_room_points.filter((room, Range(at_least, None))):
        log.info(f"room {room}: {score.points} points by {score.player}")


@reducer
def clear_room(ctx: ReducerContext, room: u32) -> None:
    removed = ctx.db.score.by_room_points.delete((room,))
    log.info(f"removed {removed} score(s) from room {room}")
