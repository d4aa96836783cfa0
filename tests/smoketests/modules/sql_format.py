"""Upstream's smoketest module ``sql-format``, in Python: one table per kind of value (its table and view whose
canonical names differ from their accessors are in ``sql_format_names.py``).

Upstream's column names are the snake_case of its Rust fields (``i8`` is ``i_8``); here the fields carry those
names. Python modules have no ``Result`` type, so ``TEnums`` has no ``bool_result`` column."""

import enum

from spacetimedb import (
    ConnectionId,
    Identity,
    ReducerContext,
    TimeDuration,
    Timestamp,
    Uuid,
    f32,
    f64,
    i8,
    i16,
    i32,
    i64,
    i128,
    i256,
    reducer,
    table,
    u8,
    u16,
    u32,
    u64,
    u128,
    u256,
)


@table
class TInts:
    i_8: i8
    i_16: i16
    i_32: i32
    i_64: i64
    i_128: i128
    i_256: i256


@table
class TIntsTuple:
    tuple: TInts


@table
class TUints:
    u_8: u8
    u_16: u16
    u_32: u32
    u_64: u64
    u_128: u128
    u_256: u256


@table
class TUintsTuple:
    tuple: TUints


@table
class TOthers:
    bool: bool
    f_32: f32
    f_64: f64
    str: str
    bytes: bytes
    identity: Identity
    connection_id: ConnectionId
    timestamp: Timestamp
    duration: TimeDuration
    uuid: Uuid


@table
class TOthersTuple:
    tuple: TOthers


class Action(enum.Enum):
    inactive = 0
    active = 1


@table
class TEnums:
    bool_opt: bool | None
    action: Action


@table
class TEnumsTuple:
    tuple: TEnums


@reducer
def test(ctx: ReducerContext) -> None:
    ints = TInts(i_8=-25, i_16=-3224, i_32=-23443, i_64=-2344353, i_128=-234434897853, i_256=-234434897853)
    ctx.db.t_ints.insert(ints)
    ctx.db.t_ints_tuple.insert(TIntsTuple(tuple=ints))
    uints = TUints(u_8=105, u_16=1050, u_32=83892, u_64=48937498, u_128=4378528978889, u_256=4378528978889)
    ctx.db.t_uints.insert(uints)
    ctx.db.t_uints_tuple.insert(TUintsTuple(tuple=uints))
    others = TOthers(
        bool=True,
        f_32=594806.58906,
        f_64=-3454353.345389043278459,
        str="This is spacetimedb",
        bytes=bytes([1, 2, 3, 4, 5, 6, 7]),
        identity=Identity(1),
        connection_id=ConnectionId(0),
        timestamp=Timestamp(0),
        duration=TimeDuration(0),
        uuid=Uuid(0),
    )
    ctx.db.t_others.insert(others)
    ctx.db.t_others_tuple.insert(TOthersTuple(tuple=others))
    enums = TEnums(bool_opt=True, action=Action.active)
    ctx.db.t_enums.insert(enums)
    ctx.db.t_enums_tuple.insert(TEnumsTuple(tuple=enums))
