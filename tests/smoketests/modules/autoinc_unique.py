"""Upstream's smoketest module ``autoinc-unique``: per integer type, a table whose AutoInc column is also unique."""

from typing import Annotated, Any

import spacetimedb
from spacetimedb import (
    AutoInc,
    ReducerContext,
    Unique,
    i8,
    i16,
    i32,
    i64,
    i128,
    reducer,
    table,
    u8,
    u16,
    u32,
    u64,
    u128,
)  # fmt: skip

INT_TYPES = {
    "u_8": u8, "u_16": u16, "u_32": u32, "u_64": u64, "u_128": u128,
    "i_8": i8, "i_16": i16, "i_32": i32, "i_64": i64, "i_128": i128,
}  # fmt: skip


def declare(suffix: str, int_type: Any) -> None:
    columns = {"key_col": Annotated[int_type, AutoInc, Unique], "name": Annotated[str, Unique]}
    row = table(name=f"person_{suffix}")(type(f"Person_{suffix}", (), {"__annotations__": columns}))

    def add_new(ctx: ReducerContext, name: str) -> None:
        value = getattr(ctx.db, f"person_{suffix}").insert(row(key_col=0, name=name))
        spacetimedb.log.info(f"Assigned Value: {value.key_col} -> {value.name}")

    def update(ctx: ReducerContext, name: str, new_id: int_type) -> None:  # type: ignore[valid-type]
        people = getattr(ctx.db, f"person_{suffix}")
        people.name.delete(name)
        people.insert(row(key_col=new_id, name=name))

    def say_hello(ctx: ReducerContext) -> None:
        for person in getattr(ctx.db, f"person_{suffix}").iter():
            spacetimedb.log.info(f"Hello, {person.key_col}:{person.name}!")
        spacetimedb.log.info("Hello, World!")

    reducer(name=f"add_new_{suffix}")(add_new)
    reducer(name=f"update_{suffix}")(update)
    reducer(name=f"say_hello_{suffix}")(say_hello)


for suffix, int_type in INT_TYPES.items():
    declare(suffix, int_type)
