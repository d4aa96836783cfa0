"""The module API: record classes, annotations to SATS types, user types round-tripping through tables, logs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from spacetimedb.module import log, snake_case
from spacetimedb.sats import (
    BOOL,
    BYTES,
    CONNECTION_ID,
    F32,
    F64,
    I8,
    I16,
    I32,
    I64,
    I128,
    I256,
    IDENTITY,
    SCHEDULE_AT,
    STRING,
    TIME_DURATION,
    TIMESTAMP,
    U8,
    U16,
    U32,
    U64,
    U128,
    U256,
    ArrayType,
    ProductType,
    RefType,
    SumType,
    SumValue,
    option,
)

from .helpers import Db, load_source


def test_snake_case() -> None:
    assert snake_case("User") == "user"
    assert snake_case("PlayerState") == "player_state"
    assert snake_case("HTTPRequest") == "http_request"
    assert snake_case("Player2Score") == "player2_score"
    assert snake_case("already_snake") == "already_snake"


def test_record_class_behaviour() -> None:
    module = load_source(
        """
        @table
        class Player:
            id: Annotated[u64, PrimaryKey]
            name: str
            score: u32 = 0
            level: u8
            tags: list[str] = []

            def label(self) -> str:
                return f"{self.name}#{self.id}"
        """
    )
    player = module.module_def.table("player").row_class
    a = player(id=1, name="ann", level=3)
    assert (a.id, a.name, a.score, a.level, a.tags) == (1, "ann", 0, 3, [])
    assert a.label() == "ann#1"
    assert player(1, "ann", level=3) == a  # positional up to the first default, keyword after
    with pytest.raises(TypeError):
        player(1, "ann", 0, 3)
    assert a != player(id=2, name="ann", level=3)
    assert repr(a) == "Player(id=1, name='ann', score=0, level=3, tags=[])"
    a.score = 10  # mutable
    assert a.score == 10
    with pytest.raises(AttributeError):
        a.nickname = "x"  # slotted: no other attributes
    assert not hasattr(a, "__dict__")
    assert player.__hash__ is None
    b = player(id=2, name="bob", level=1)
    b.tags.append("new")
    assert a.tags == []  # list defaults are copied per record
    assert player.__stdb_record__.to_tuple(a) == (1, "ann", 10, 3, ())  # arrays are tuples
    assert player.__stdb_record__.from_tuple((1, "ann", 10, 3, ())) == a


def test_annotations_map_to_sats_types() -> None:
    module = load_source(
        """
        @table
        class AllTypes:
            a_u8: u8
            a_u16: u16
            a_u32: u32
            a_u64: u64
            a_u128: u128
            a_u256: u256
            a_i8: i8
            a_i16: i16
            a_i32: i32
            a_i64: i64
            a_i128: i128
            a_i256: i256
            a_f32: f32
            a_f64: f64
            a_int: int
            a_float: float
            a_bool: bool
            a_str: str
            a_bytes: bytes
            a_list: list[u16]
            a_opt: Optional[str]
            a_union_none: str | None
            a_identity: Identity
            a_conn: ConnectionId
            a_ts: Timestamp
            a_dur: TimeDuration
            a_sched: ScheduleAt
            a_nested: list[Optional[list[i8]]]
        """
    )
    table = module.module_def.table("all_types")
    assert [c.type for c in table.columns] == [
        U8, U16, U32, U64, U128, U256, I8, I16, I32, I64, I128, I256, F32, F64, I64, F64, BOOL, STRING, BYTES,
        ArrayType(U16), option(STRING), option(STRING), IDENTITY, CONNECTION_ID, TIMESTAMP, TIME_DURATION,
        SCHEDULE_AT, ArrayType(option(ArrayType(I8))),
    ]  # fmt: skip
    assert table.name == "all_types" and table.type_name == "AllTypes"


USER_TYPES = """
class Color(enum.Enum):
    RED = 1
    GREEN = 2
    BLUE = 3

@stdb_type
class Point:
    x: f64
    y: f64

@stdb_type
class Circle:
    center: Point
    radius: f64

@stdb_type
class Square:
    corner: Point
    side: f64

@stdb_type
class Nothing:
    pass

Shape = stdb_type("Shape", Circle | Square | Nothing)

@table(public=True, indexes=[Index.btree("color", "id", name="by_color")])
class Drawing:
    id: Annotated[u32, PrimaryKey]
    color: Color
    shape: Shape
    path: list[Point]
    anchor: Optional[Point]
    tint: Annotated[Color, Index.hash]

@reducer
def draw(ctx: ReducerContext, id: u32, color: Color, shape: Shape, path: list[Point]) -> None:
    ctx.db.drawing.insert(Drawing(id=id, color=color, shape=shape, path=path, anchor=None, tint=color))

@reducer
def recolor(ctx: ReducerContext, color: Color) -> None:
    for drawing in ctx.db.drawing.by_color.filter(Color.RED):
        drawing.color = color
        ctx.db.drawing.id.update(drawing)
"""


def test_user_types_in_the_typespace() -> None:
    module = load_source(USER_TYPES).module_def
    names = {t.name: t.ref for t in module.types}
    assert set(names) == {"Drawing", "Color", "Shape", "Circle", "Point", "Square", "Nothing"}
    ts = module.typespace
    assert ts[names["Color"]] == SumType.of("RED", "GREEN", "BLUE")
    assert ts[names["Point"]] == ProductType.of(("x", F64), ("y", F64))
    assert ts[names["Shape"]] == SumType.of(
        ("Circle", RefType(names["Circle"])),
        ("Square", RefType(names["Square"])),
        ("Nothing", RefType(names["Nothing"])),
    )
    drawing = module.table("drawing")
    # raw types keep refs; the stored types are inlined
    assert drawing.column("color").raw_type == RefType(names["Color"])
    assert drawing.column("path").type == ArrayType(ProductType.of(("x", F64), ("y", F64)))
    assert drawing.column("anchor").type == option(ProductType.of(("x", F64), ("y", F64)))
    assert [(i.name, i.algorithm) for i in drawing.indexes] == [
        ("drawing_id_idx_btree", "btree"),
        ("drawing_color_id_idx_btree", "btree"),
        ("drawing_tint_idx_hash", "hash"),
    ]


def test_user_types_round_trip_through_a_table() -> None:
    loaded = load_source(USER_TYPES)
    db = Db(loaded)
    namespace = loaded.python_module.__dict__
    color, point, circle, square, nothing = (
        namespace[n] for n in ("Color", "Point", "Circle", "Square", "Nothing")
    )
    shape = circle(center=point(x=1.0, y=2.0), radius=3.0)
    db.call("draw", 1, SumValue(0, ()), SumValue(0, ((1.0, 2.0), 3.0)), [(0.0, 0.0), (1.0, 1.0)])
    args = db.runtime.decode_json_args(
        "draw", {"id": 2, "color": {"BLUE": []}, "shape": {"Nothing": {}}, "path": []}
    )
    db.call("draw", *args)
    stored = db.rows("drawing")
    assert stored[0] == (
        1,
        SumValue(0, ()),
        SumValue(0, ((1.0, 2.0), 3.0)),
        ((0.0, 0.0), (1.0, 1.0)),
        None,
        SumValue(0, ()),
    )
    assert stored[1][1] == SumValue(2, ()) and stored[1][2] == SumValue(2, ())
    with db.with_ctx() as ctx:
        first = ctx.db.drawing.id.find(1)
        assert first.color is color.RED and first.shape == shape
        assert first.path == [point(x=0.0, y=0.0), point(x=1.0, y=1.0)]
        assert ctx.db.drawing.id.find(2).shape == nothing()
        assert [d.id for d in ctx.db.drawing.tint.filter(color.BLUE)] == [2]
        drawing = loaded.module_def.table("drawing").row_class
        made = ctx.db.drawing.insert(
            drawing(id=3, color=color.GREEN, shape=square(corner=point(x=0.0, y=0.0), side=2.0), path=[],
                    anchor=point(x=5.0, y=5.0), tint=color.GREEN)
        )  # fmt: skip
        assert ctx.db.drawing.id.find(3) == made
        assert made.anchor == point(x=5.0, y=5.0)
        assert [d.id for d in ctx.db.drawing.by_color.filter((color.GREEN,))] == [3]
    db.call("recolor", SumValue(1, ()))
    assert [r[1] for r in db.rows("drawing")] == [SumValue(1, ()), SumValue(2, ())]


def test_bad_enum_value_names_table_and_column() -> None:
    from spacetimedb.module import ColumnValueError

    loaded = load_source(USER_TYPES)
    db = Db(loaded)
    drawing = loaded.module_def.table("drawing").row_class
    nothing = loaded.python_module.__dict__["Nothing"]
    with (
        db.with_ctx() as ctx,
        pytest.raises(ColumnValueError, match=r"table `drawing`, column `color`.*'purple'"),
    ):
        ctx.db.drawing.insert(drawing(id=1, color="purple", shape=nothing(), path=[], anchor=None, tint=None))


def test_log_sink_and_print_routing() -> None:
    lines: list[tuple[str, str, str | None, int | None]] = []
    loaded = load_source(
        """
        @table
        class Thing:
            id: Annotated[u32, PrimaryKey]

        @reducer
        def talk(ctx: ReducerContext, word: str) -> None:
            log.info("info", word)
            log.warn("careful")
            log.error("bad")
            log.debug("details", 1, 2)
            print("printed", word, sep="-")
        """,
        name="talker.py",
    )
    db = Db(loaded)
    previous = log.set_sink(lambda *line: lines.append(line))
    try:
        db.call("talk", "now")
    finally:
        log.set_sink(previous)
    assert [(level, message) for level, message, _, _ in lines] == [
        ("Info", "info now"),
        ("Warn", "careful"),
        ("Error", "bad"),
        ("Debug", "details 1 2"),
        ("Info", "printed-now"),
    ]
    filename, line = lines[0][2], lines[0][3]
    assert filename is not None and filename == "talker.py" and isinstance(line, int)


def test_default_sink_writes_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    log.set_sink(None)
    log.warn("to stderr")
    assert "[WARN]" in capsys.readouterr().err


def test_import_spacetimedb_is_lazy() -> None:
    code = (
        "import sys, spacetimedb\n"
        "assert 'spacetimedb.module' not in sys.modules and 'typing' not in sys.modules, sorted(sys.modules)\n"
        "from spacetimedb import table, u64, log, Identity, UniqueConstraintViolation, Range\n"
        "assert 'spacetimedb.module' in sys.modules\n"
        "assert log.info and table and Identity(1).value == 1\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.stdout.strip() == "ok", result.stderr


def test_recursive_types_as_reducer_arguments() -> None:
    loaded = load_source(
        """
        @stdb_type
        class Node:
            value: u32
            children: list[Node]

        @stdb_type
        class Leaf:
            weight: u8

        @stdb_type
        class Label:
            text: str

        Tag = stdb_type("Tag", Leaf | Label)

        @table
        class Total:
            sum: Annotated[u32, PrimaryKey]
            tag: Optional[Tag]

        @reducer
        def walk(ctx: ReducerContext, tree: Node, tag: Optional[Tag]) -> None:
            def total(node: Node) -> int:
                assert isinstance(node, Node) and isinstance(node.children, list)
                return node.value + sum(total(child) for child in node.children)

            assert tag is None or isinstance(tag, (Leaf, Label))
            ctx.db.total.insert(Total(sum=total(tree), tag=tag))
        """
    )
    db = Db(loaded)
    tree = {
        "value": 1,
        "children": [{"value": 2, "children": []}, {"value": 3, "children": [{"value": 4, "children": []}]}],
    }
    db.call(
        "walk",
        *db.runtime.decode_json_args("walk", {"tree": tree, "tag": {"some": {"Label": {"text": "hi"}}}}),
    )
    db.call("walk", *db.runtime.decode_args("walk", db.runtime.encode_args("walk", ((5, ()), None))))
    assert db.rows("total") == [(10, SumValue(1, ("hi",))), (5, None)]
    assert loaded.module_def.reducers["walk"].params.elements[0].type == RefType(
        next(t.ref for t in loaded.module_def.types if t.name == "Node")
    )
