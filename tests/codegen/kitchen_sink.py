"""A module that uses every kind of type and table option the generators must handle."""

import enum
from typing import Annotated

from spacetimedb import (
    AutoInc,
    ConnectionId,
    Identity,
    Index,
    PrimaryKey,
    ReducerContext,
    ScheduleAt,
    TimeDuration,
    Timestamp,
    Unique,
    f32,
    i128,
    reducer,
    table,
    type,
    u8,
    u32,
    u64,
)


@type
class Color(enum.Enum):
    RED = 0
    DARK_GREEN = 1


@type
class Point:
    x: u32
    y: u32


@type
class Circle:
    radius: f32


@type
class Square:
    side: f32


Shape = type("Shape", Circle | Square)


@table(public=True, name="user_profile", indexes=[Index.btree("level", "nick_name", name="by_level_nick")])
class UserProfile:
    id: Annotated[u64, PrimaryKey, AutoInc]
    owner_id: Identity
    nick_name: Annotated[str, Unique]
    level: Annotated[u8, Index.btree]
    home: Point
    favorite: Color
    shape: Shape
    trail: list[Point]
    avatar: bytes
    motto: str | None
    best: Point | None
    big: i128
    seen: Timestamp
    connection: ConnectionId


@table(public=True)
class Tag:
    label: str
    weight: u32


@table(scheduled="tick")
class TickTimer:
    scheduled_id: Annotated[u64, PrimaryKey, AutoInc]
    scheduled_at: ScheduleAt


@table
class Secret:
    value: str


@reducer
def add_profile(
    ctx: ReducerContext, nick_name: str, level: u8, home: Point, favorite: Color, shape: Shape
) -> None:
    ctx.db.user_profile.insert(
        UserProfile(
            id=0,
            owner_id=ctx.sender,
            nick_name=nick_name,
            level=level,
            home=home,
            favorite=favorite,
            shape=shape,
            trail=[home, Point(x=home.x + 1, y=home.y + 1)],
            avatar=b"\x00\x01",
            motto=None,
            best=home,
            big=-(1 << 100),
            seen=ctx.timestamp,
            connection=ctx.connection_id or ConnectionId(1),
        )
    )


@reducer
def rename(ctx: ReducerContext, id: u64, nick_name: str) -> None:
    profile = ctx.db.user_profile.id.find(id)
    if profile is None:
        raise LookupError(f"no profile {id}")
    profile.nick_name = nick_name
    ctx.db.user_profile.id.update(profile)


@reducer
def add_tag(ctx: ReducerContext, label: str, weight: u32) -> None:
    ctx.db.tag.insert(Tag(label=label, weight=weight))


@reducer
def remove_tag(ctx: ReducerContext, label: str, weight: u32) -> None:
    ctx.db.tag.delete(Tag(label=label, weight=weight))


@reducer
def tick(ctx: ReducerContext, timer: TickTimer) -> None:
    pass


@reducer(lifecycle="init")
def init(ctx: ReducerContext) -> None:
    ctx.db.tick_timer.insert(
        TickTimer(scheduled_id=0, scheduled_at=ScheduleAt.interval(TimeDuration.from_seconds(3600)))
    )
