"""A module with every kind of schema item `spacetime describe` shows: named product and sum types, an enum,
a multi-column index, a unique column, a schedule and lifecycle reducers."""

import enum
from typing import Annotated

from spacetimedb import (
    AutoInc,
    Index,
    PrimaryKey,
    ReducerContext,
    ScheduleAt,
    Unique,
    reducer,
    table,
    u32,
    u64,
)
from spacetimedb import type as stdb_type


class Color(enum.Enum):
    RED = 1
    GREEN = 2


@stdb_type
class Point:
    x: float
    y: float


@table(public=True, indexes=[Index.btree("color", "id", name="by_color")])
class Drawing:
    id: Annotated[u32, PrimaryKey]
    label: Annotated[str, Unique]
    color: Color
    path: list[Point]
    anchor: Point | None


@table(scheduled="tick")
class Timer:
    scheduled_id: Annotated[u64, PrimaryKey, AutoInc]
    scheduled_at: ScheduleAt


@reducer(lifecycle="init")
def init(ctx: ReducerContext) -> None:
    pass


@reducer
def tick(ctx: ReducerContext, timer: Timer) -> None:
    pass


@reducer
def draw(ctx: ReducerContext, id: u32, label: str, color: Color, path: list[Point]) -> None:
    ctx.db.drawing.insert(Drawing(id=id, label=label, color=color, path=path, anchor=None))
