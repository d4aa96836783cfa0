"""The module the PostgreSQL front-end tests publish: a column of every type, a private table, an RLS table."""

_SOURCE = """
import enum
from typing import Annotated, Optional
from spacetimedb import (
    ConnectionId, Identity, PrimaryKey, ReducerContext, TimeDuration, Timestamp, Uuid, client_visibility_filter,
    f32, f64, i8, i16, i32, i64, i128, i256, reducer, table, u8, u16, u32, u64, u128, u256,
)
from spacetimedb import type as stdb_type

class Color(enum.Enum):
    RED = 1
    GREEN = 2

@stdb_type
class Point:
    x: i32
    y: i32

@table(public=True)
class Everything:
    id: Annotated[u32, PrimaryKey]
{scalars}
    a_duration: TimeDuration
    a_point: Point
    a_list: list[u16]
    a_option: Optional[str]

@table(public=True)
class Scalars:
    id: Annotated[u32, PrimaryKey]
{scalars}
    a_option: Optional[str]

@table(public=True)
class Person:
    id: Annotated[u64, PrimaryKey]
    name: str
    age: u8

@table(public=False)
class Secret:
    id: Annotated[u32, PrimaryKey]

@table(public=True)
class Mailbox:
    id: Annotated[u32, PrimaryKey]
    owner: Identity
    text: str

client_visibility_filter("SELECT * FROM mailbox WHERE owner = :sender")

@reducer
def fill(ctx: ReducerContext, stranger: Identity) -> None:
    ctx.db.everything.insert(Everything(
        id=1, a_u8=255, a_u16=65535, a_u32=4294967295, a_u64=18446744073709551615,
        a_u128=2**128 - 1, a_u256=2**256 - 1, a_i8=-128, a_i16=-32768, a_i32=-2147483648,
        a_i64=-9223372036854775808, a_i128=-(2**127), a_i256=-(2**255), a_f32=1.5, a_f64=-2.25,
        a_bool=True, a_str="h\\u00e9llo", a_bytes=bytes([0, 1, 254, 255]), a_identity=ctx.sender,
        a_connection=ConnectionId(0x0102030405060708090A0B0C0D0E0F10),
        a_timestamp=Timestamp(1_700_000_000_123_456), a_duration=TimeDuration(90_061_000_001),
        a_color=Color.GREEN, a_uuid=Uuid(0x0123456789ABCDEF0123456789ABCDEF), a_point=Point(x=3, y=-4),
        a_list=[1, 2, 3], a_option=None,
    ))
    for i in range(1, 11):
        ctx.db.person.insert(Person(id=i, name=f"person{i}", age=20 + i))
    ctx.db.secret.insert(Secret(id=1))
    ctx.db.mailbox.insert(Mailbox(id=1, owner=ctx.sender, text="for the owner"))
    ctx.db.mailbox.insert(Mailbox(id=2, owner=stranger, text="for the stranger"))
"""
# the columns both tables have: every type a literal (and so a parameter) can be written for
SCALAR_COLUMNS = [
    ("a_u8", "u8"), ("a_u16", "u16"), ("a_u32", "u32"), ("a_u64", "u64"), ("a_u128", "u128"), ("a_u256", "u256"),
    ("a_i8", "i8"), ("a_i16", "i16"), ("a_i32", "i32"), ("a_i64", "i64"), ("a_i128", "i128"), ("a_i256", "i256"),
    ("a_f32", "f32"), ("a_f64", "f64"), ("a_bool", "bool"), ("a_str", "str"), ("a_bytes", "bytes"),
    ("a_identity", "Identity"), ("a_connection", "ConnectionId"), ("a_timestamp", "Timestamp"), ("a_color", "Color"),
    ("a_uuid", "Uuid"),
]  # fmt: skip
MODULE = _SOURCE.replace("{scalars}", "\n".join(f"    {name}: {ty}" for name, ty in SCALAR_COLUMNS)).encode()
