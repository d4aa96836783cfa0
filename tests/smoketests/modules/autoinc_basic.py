"""Upstream's smoketest module ``autoinc-basic``: per integer type, a table with an AutoInc column (upstream
generates them with a macro; here a function declares each)."""

from typing import Annotated, Any

import spacetimedb
from spacetimedb import (
    AutoInc,
    ReducerContext,
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
)

INT_TYPES = {
    "u_8": u8, "u_16": u16, "u_32": u32, "u_64": u64, "u_128": u128,
    "i_8": i8, "i_16": i16, "i_32": i32, "i_64": i64, "i_128": i128,
}  # fmt: skip


def declare(suffix: str, int_type: Any) -> None:
    row = table(name=f"person_{suffix}")(
        type(
            f"Person_{suffix}",
            (),
            {"__annotations__": {"key_col": Annotated[int_type, AutoInc], "name": str}},
        )
    )

    def add(ctx: ReducerContext, name: str, expected_value: int_type) -> None:  # type: ignore[valid-type]
        value = getattr(ctx.db, f"person_{suffix}").insert(row(key_col=0, name=name))
        assert value.key_col == expected_value, (value.key_col, expected_value)

    def say_hello(ctx: ReducerContext) -> None:
        for person in getattr(ctx.db, f"person_{suffix}").iter():
            spacetimedb.log.info(f"Hello, {person.key_col}:{person.name}!")
        spacetimedb.log.info("Hello, World!")

    reducer(name=f"add_{suffix}")(add)
    reducer(name=f"say_hello_{suffix}")(say_hello)


for suffix, int_type in INT_TYPES.items():
    declare(suffix, int_type)
