"""Python's own types where the SATS type is unambiguous: ``datetime`` ↔ Timestamp, ``timedelta`` ↔
TimeDuration, a plain ``@dataclass`` ↔ a product type (and ``enum.Enum``, ``bytes``, ``Optional``, ``list``
alongside them); and advice that fits the types that have no single SATS spelling."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from spacetimedb.module import ModuleError
from spacetimedb.sats import F64, STRING, TIME_DURATION, TIMESTAMP, ArrayType, RefType
from spacetimedb.testing import ReducerError, TestDatabase

from .helpers import load_source

MODULE = """
import dataclasses
import datetime as dt
import enum
from typing import Annotated, Optional

from spacetimedb import AutoInc, PrimaryKey, ReducerContext, reducer, table, u64


class Color(enum.Enum):
    RED = 1
    GREEN = 2


@dataclasses.dataclass(frozen=True)
class Point:
    x: float
    y: float


@dataclasses.dataclass
class Tag:
    label: str
    at: dt.datetime
    path: list[Point]


@table
class Event:
    id: Annotated[u64, PrimaryKey, AutoInc]
    at: dt.datetime
    lasted: dt.timedelta
    payload: bytes
    color: Color
    where: Optional[Point]
    tags: list[Tag]


@reducer
def record(
    ctx: ReducerContext, at: dt.datetime, lasted: dt.timedelta, where: Optional[Point], tags: list[Tag]
) -> None:
    # module code gets the Python values themselves
    assert isinstance(at, dt.datetime) and at.tzinfo is not None, at
    assert isinstance(lasted, dt.timedelta), lasted
    assert where is None or isinstance(where, Point), where
    assert all(isinstance(tag, Tag) and isinstance(tag.at, dt.datetime) for tag in tags), tags
    event = Event(id=0, at=at, lasted=lasted, payload=b"\\x00\\xff", color=Color.GREEN, where=where, tags=tags)
    ctx.db.event.insert(event)


@reducer
def stamp(ctx: ReducerContext) -> None:
    now = ctx.timestamp.to_datetime()
    ctx.db.event.insert(
        Event(id=0, at=now, lasted=dt.timedelta(0), payload=b"", color=Color.RED, where=None, tags=[])
    )


@reducer
def naive(ctx: ReducerContext) -> None:
    ctx.db.event.insert(
        Event(id=0, at=dt.datetime(2026, 1, 1), lasted=dt.timedelta(0), payload=b"", color=Color.RED, where=None,
              tags=[])
    )
"""

WHEN = dt.datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=dt.UTC)


@pytest.fixture
def db(tmp_path: Path):
    path = tmp_path / "native.py"
    path.write_text(MODULE, encoding="utf-8")
    with TestDatabase.load(path) as database:
        yield database


def test_columns_get_the_sats_types(db: TestDatabase):
    definition = db.module_def
    types = {column.name: column.type for column in definition.table("event").columns}
    assert types["at"] == TIMESTAMP
    assert types["lasted"] == TIME_DURATION
    refs = {t.name: t.ref for t in definition.types}
    point = definition.typespace[refs["Point"]]
    assert [(e.name, e.type) for e in point.elements] == [("x", F64), ("y", F64)]
    tag = definition.typespace[refs["Tag"]]
    assert [(e.name, e.type) for e in tag.elements] == [
        ("label", STRING),
        ("at", TIMESTAMP),
        ("path", ArrayType(RefType(refs["Point"]))),
    ]


def test_values_round_trip_as_python_objects(db: TestDatabase):
    module = db.module
    path = [module.Point(0.0, 0.0), module.Point(1.5, -2.0)]
    tag = module.Tag("start", WHEN - dt.timedelta(days=1), path)
    db.call("record", WHEN, dt.timedelta(minutes=5, microseconds=3), module.Point(1.0, 2.0), [tag])
    db.call("record", WHEN, dt.timedelta(0), None, [])
    first, second = sorted(db.rows("event"), key=lambda row: row.id)
    assert first.at == WHEN and first.at.tzinfo is not None
    assert first.lasted == dt.timedelta(minutes=5, microseconds=3)
    assert first.payload == b"\x00\xff"
    assert first.color is module.Color.GREEN
    assert first.where == module.Point(1.0, 2.0)
    assert first.tags == [tag]
    assert second.where is None and second.tags == []


def test_a_reducer_may_store_the_time_of_its_call(db: TestDatabase):
    db.call("stamp")
    [event] = db.rows("event")
    assert event.at == db.now.to_datetime()


def test_wrong_values_say_what_was_expected(db: TestDatabase):
    with pytest.raises(ReducerError, match="naive datetime: give it a time zone"):
        db.call("record", dt.datetime(2026, 1, 1), dt.timedelta(0), None, [])
    with pytest.raises(ReducerError, match=r"expected a datetime\.timedelta, got int 5"):
        db.call("record", WHEN, 5, None, [])
    with pytest.raises(ReducerError, match="expected a Point"):
        db.call("record", WHEN, dt.timedelta(0), (1.0, 2.0), [])
    with pytest.raises(ReducerError, match=r"event.*at.*naive datetime"):
        db.call("naive")


@pytest.mark.parametrize(
    ("annotation", "advice"),
    [
        ("dt.date", "`date` is not a column or argument type: use datetime.datetime or Timestamp"),
        ("decimal.Decimal", "use an integer of the smallest unit (e.g. cents: u64), or float"),
        ("uuid.UUID", "use spacetimedb.Uuid"),
        ("tuple[int, str]", "use a @type class (or a @dataclass), whose fields have names"),
        ("frozenset[int]", "use list[T]"),
        ("dict", "use a list of a @type record with key and value fields, or a table"),
    ],
)
def test_types_without_one_sats_spelling_get_advice_that_fits(annotation: str, advice: str):
    source = f"""
        import datetime as dt
        import decimal
        import uuid

        @table
        class Bad:
            value: {annotation}
        """
    with pytest.raises(ModuleError) as caught:
        load_source(source)
    assert "field `value` of `Bad`" in str(caught.value)
    assert advice in str(caught.value)
    assert "@type or @table" not in str(caught.value)


DATACLASS_CASES = {
    "a field that does not fit": (
        "ok: int\n    bad: set[int]",
        r"field `bad` of `Inner`: `set\[int\]` is not a column",
    ),
    "a field outside __init__": (
        "ok: int\n    derived: int = dataclasses.field(init=False, default=0)",
        r"every field must be an __init__ argument, not derived",
    ),
    "a column marker": (
        "key: Annotated[int, PrimaryKey]",
        "column markers are only allowed in @table classes",
    ),
}


@pytest.mark.parametrize("case", sorted(DATACLASS_CASES))
def test_a_dataclass_that_cannot_be_a_product_type_is_refused(case: str):
    fields, message = DATACLASS_CASES[case]
    source = f"""
import dataclasses

@dataclasses.dataclass
class Inner:
    {fields}

@table
class Outer:
    inner: Inner
"""
    with pytest.raises(ModuleError, match=message):
        load_source(source)
