"""Table handles: point, range and prefix filters, deletes, hash indexes, value errors, reducer argument errors."""

from __future__ import annotations

import pytest

from spacetimedb.module import ColumnValueError, NoSuchReducerError, Range, ReducerArgsError
from spacetimedb.sats import encode

from .helpers import Db, load_source

SOURCE = """
@table(public=True, indexes=[Index.btree("room", "points", "round", name="by_room")])
class Score:
    id: Annotated[u32, PrimaryKey, AutoInc]
    room: u8
    points: i32
    round: u16
    player: Annotated[str, Index.hash]
    level: Annotated[u8, Index.btree]
    ratio: f32 = 0.0

@table
class Log:
    line: str

@reducer
def add(ctx: ReducerContext, room: u8, points: i32, round: u16, player: str, level: u8) -> None:
    ctx.db.score.insert(Score(id=0, room=room, points=points, round=round, player=player, level=level))

@reducer
def set_level(ctx: ReducerContext, id: u32, level: u32) -> None:
    score = ctx.db.score.id.find(id)
    score.level = level
    ctx.db.score.id.update(score)

@reducer
def tagged(ctx: ReducerContext, tags: list[str], blob: list[u8], maybe: Optional[list[i16]]) -> None:
    ctx.db.log.insert(Log(line=f"{tags}|{blob}|{maybe}"))
"""

ROWS = [
    # room, points, round, player, level
    (1, 10, 1, "ann", 1),
    (1, 20, 1, "bob", 2),
    (1, 20, 2, "cy", 3),
    (1, -5, 3, "ann", 4),
    (2, 30, 1, "bob", 5),
    (2, 40, 2, "dee", 6),
    (3, 50, 1, "ann", 7),
]


@pytest.fixture
def db() -> Db:
    database = Db(load_source(SOURCE))
    for row in ROWS:
        database.call("add", *row)
    return database


def ids(rows: object) -> list[int]:
    return sorted(r.id for r in rows)  # type: ignore[attr-defined]


def test_single_column_btree_filters(db: Db) -> None:
    with db.with_ctx() as ctx:
        level = ctx.db.score.level
        assert ids(level.filter(3)) == [3]
        assert ids(level.filter(range(2, 5))) == [2, 3, 4]
        assert ids(level.filter(Range(2, 5))) == [2, 3, 4]
        assert ids(level.filter(Range(2, 5, inclusive=True))) == [2, 3, 4, 5]
        assert ids(level.filter(Range(2, 5, exclude_lo=True))) == [3, 4]
        assert ids(level.filter(Range(None, 3))) == [1, 2]
        assert ids(level.filter(Range(6))) == [6, 7]
        assert ids(level.filter(range(100, 200))) == []
        with pytest.raises(ValueError, match="step 1"):
            level.filter(range(0, 10, 2))


def test_multi_column_prefix_filters(db: Db) -> None:
    with db.with_ctx() as ctx:
        by_room = ctx.db.score.by_room
        assert ids(by_room.filter(1)) == [1, 2, 3, 4]
        assert ids(by_room.filter((1,))) == [1, 2, 3, 4]
        assert ids(by_room.filter((1, 20))) == [2, 3]
        assert ids(by_room.filter((1, 20, 2))) == [3]
        assert ids(by_room.filter((1, range(0, 21)))) == [1, 2, 3]
        assert ids(by_room.filter((1, Range(-10, 10, inclusive=True)))) == [1, 4]
        assert ids(by_room.filter((1, 20, Range(2)))) == [3]
        assert ids(by_room.filter((Range(2, None),))) == [5, 6, 7]
        # ordered by the index key
        assert [s.points for s in by_room.filter((1,))] == [-5, 10, 20, 20]
        with pytest.raises(ValueError, match="filter by a tuple of 1 to 3 values"):
            by_room.filter((1, 2, 3, 4))
        with pytest.raises(ValueError, match="range bound 'x' does not fit column `points`"):
            by_room.filter((1, Range("x", None)))


def test_deletes_by_index(db: Db) -> None:
    with db.with_ctx() as ctx:
        score = ctx.db.score
        assert score.by_room.delete((1, 20)) == 2
        assert score.level.delete(range(6, 8)) == 2
        assert score.id.delete(Range(1, 2)) is True
        assert ids(score.iter()) == [4, 5]
        assert score.player.delete("bob") == 1
        assert ids(score.iter()) == [4]
        assert score.by_room.delete((9,)) == 0


def test_hash_index(db: Db) -> None:
    with db.with_ctx() as ctx:
        player = ctx.db.score.player
        assert ids(player.filter("ann")) == [1, 4, 7]
        assert ids(player.filter("zed")) == []
        with pytest.raises(ValueError, match="hash index: it cannot filter by range"):
            player.filter(Range("a", "b"))


def test_unique_handle(db: Db) -> None:
    with db.with_ctx() as ctx:
        by_id = ctx.db.score.id
        found = by_id.find(3)
        assert (found.player, found.points) == ("cy", 20)
        assert by_id.find(99) is None
        found.points = 99
        assert by_id.update(found) is found
        assert by_id.find(3).points == 99
        assert ids(by_id.filter(Range(2, 4))) == [2, 3]
        score_class = type(found)
        ghost = score_class(id=42, room=1, points=1, round=1, player="x", level=1)
        with pytest.raises(Exception, match="no row in `score` with id = 42"):
            by_id.update(ghost)


def test_values_out_of_range_name_table_column_and_value(db: Db) -> None:
    with pytest.raises(ColumnValueError) as caught:
        db.call("add", 1, 1, 1, "x", 300)
    assert (
        str(caught.value)
        == "table `score`, column `level`: invalid value 300: value 300 out of range for U8 [0, 255]"
    )
    assert (caught.value.table, caught.value.column, caught.value.value) == ("score", "level", 300)
    with pytest.raises(ColumnValueError, match="table `score`, column `level`: invalid value 256"):
        db.call("set_level", 1, 256)  # through update
    with db.with_ctx() as ctx:
        row = ctx.db.score.id.find(1)
        row.player = 7
        with pytest.raises(ColumnValueError, match="column `player`: invalid value 7: expected String"):
            ctx.db.score.insert(row)
        with pytest.raises(TypeError, match="table `score` stores Score rows, got tuple"):
            ctx.db.score.insert((1, 2))
        assert ctx.db.score.count() == len(ROWS)


def test_reducer_argument_errors(db: Db) -> None:
    runtime = db.runtime
    with pytest.raises(NoSuchReducerError, match="no such reducer: `nope`"):
        runtime.decode_args("nope", b"")
    good = encode(runtime.reducer("add").params, (1, 2, 3, "p", 4))
    assert runtime.decode_args("add", good) == (1, 2, 3, "p", 4)
    with pytest.raises(ReducerArgsError, match=r"reducer `add`, argument `player`: .*"):
        runtime.decode_args("add", good[:8])
    with pytest.raises(ReducerArgsError, match=r"reducer `add`: 1 unexpected byte\(s\)"):
        runtime.decode_args("add", good + b"\x00")
    with pytest.raises(ReducerArgsError, match="reducer `add`, argument `points`: expected I32, got 'many'"):
        runtime.decode_json_args("add", [1, "many", 3, "p", 4])
    with pytest.raises(ReducerArgsError, match=r"reducer `add`, argument `room`: .*out of range"):
        runtime.decode_json_args("add", {"room": 256, "points": 1, "round": 1, "player": "p", "level": 1})
    with pytest.raises(ReducerArgsError, match=r"reducer `add`: missing argument.*level"):
        runtime.decode_json_args("add", {"room": 1, "points": 1, "round": 1, "player": "p"})
    with pytest.raises(ReducerArgsError, match=r"reducer `add`: unknown argument.*colour"):
        runtime.decode_json_args(
            "add", {"room": 1, "points": 1, "round": 1, "player": "p", "level": 1, "colour": 1}
        )
    with pytest.raises(ReducerArgsError, match="reducer `add`: expected 5 argument"):
        runtime.decode_json_args("add", [1])
    with pytest.raises(ReducerArgsError, match="must be a JSON array or object"):
        runtime.decode_json_args("add", "1,2")


def test_array_arguments_reach_the_reducer_as_lists(db: Db) -> None:
    args = db.runtime.decode_json_args("tagged", [["a", "b"], "0102", {"some": [1, -2]}])
    assert args == (("a", "b"), b"\x01\x02", (1, -2))  # canonical arrays are tuples
    db.call("tagged", *args)
    db.call("tagged", (), b"", None)
    assert [r[0] for r in db.rows("log")] == ["['a', 'b']|[1, 2]|[1, -2]", "[]|[]|None"]
