"""A small database the SQL tests read: people with pets, a private table, one table of every type."""

from __future__ import annotations

from spacetimedb import sql
from spacetimedb.datastore import Datastore, IndexDef, SequenceDef, TableDef
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
    STRING,
    TIMESTAMP,
    U8,
    U16,
    U32,
    U64,
    U128,
    U256,
    UUID,
    ConnectionId,
    Identity,
    SumType,
    SumValue,
    Timestamp,
    Uuid,
    option,
)

OWNER = Identity(0xAA)
ALICE = Identity(1)
BOB = Identity(2)

PEOPLE = [(1, "alice", 30), (2, "bob", 25), (3, "carol", 35), (4, "dave", 25), (5, "eve", 40)]
PETS = [(1, "cat", 3), (1, "dog", 5), (3, "fish", 1), (9, "ghost", 100)]

ALL_TYPES = [
    ("b", BOOL),
    ("i8", I8),
    ("u8", U8),
    ("i16", I16),
    ("u16", U16),
    ("i32", I32),
    ("u32", U32),
    ("i64", I64),
    ("u64", U64),
    ("i128", I128),
    ("u128", U128),
    ("i256", I256),
    ("u256", U256),
    ("f32", F32),
    ("f64", F64),
    ("s", STRING),
    ("bytes", BYTES),
    ("ident", IDENTITY),
    ("conn", CONNECTION_ID),
    ("ts", TIMESTAMP),
    ("uuid", UUID),
    ("opt", option(I32)),
    ("color", SumType.of("red", "green", "blue")),
]
ALL_TYPES_ROW = (
    True,
    -8,
    8,
    -16,
    16,
    -32,
    32,
    -64,
    64,
    -128,
    128,
    -(2**200),
    2**200,
    1.5,
    2.25,
    "hello",
    b"\x01\x02",
    ALICE,
    ConnectionId(7),
    Timestamp.parse("2025-02-10T15:45:30Z"),
    Uuid(0x0102),
    None,
    SumValue(1, ()),
)


def build_db() -> Datastore:
    ds = Datastore()
    tx = ds.begin_mut_tx()
    person = tx.create_table(
        TableDef(
            "person",
            [("id", U64), ("name", STRING), ("age", U8)],
            indexes=[IndexDef((0,)), IndexDef((1,)), IndexDef((2,))],
            unique_constraints=[((0,), None), ((1,), None)],
            sequences=[SequenceDef(0)],
            primary_key=0,
        )
    )
    pet = tx.create_table(
        TableDef("pet", [("owner", U64), ("kind", STRING), ("weight", U32)], indexes=[IndexDef((0,))])
    )
    secret = tx.create_table(TableDef("secret", [("id", U64), ("owner", IDENTITY)], public=False))
    everything = tx.create_table(TableDef("everything", list(ALL_TYPES), indexes=[IndexDef((6,))]))
    for row in PEOPLE:  # through the sequence, so that it hands out 6 next
        assert tx.insert(person.table_id, (0, *row[1:])) == row
    for row in PETS:
        tx.insert(pet.table_id, row)
    tx.insert(secret.table_id, (1, ALICE))
    tx.insert(everything.table_id, ALL_TYPES_ROW)
    ds.commit(tx)
    return ds


def query(ds: Datastore, text: str, caller: Identity = OWNER, owner: bool = True) -> list[tuple]:
    """Compile and run a SELECT on a read transaction."""
    with ds.begin_tx() as tx:
        return sql.execute(sql.compile(text, tx, caller, owner), tx).rows


def explain(ds: Datastore, text: str, caller: Identity = OWNER, owner: bool = True) -> list[str]:
    with ds.begin_tx() as tx:
        plan = sql.compile(text, tx, caller, owner)
        assert isinstance(plan, sql.SelectPlan)
        return plan.explain()


def write(ds: Datastore, text: str, caller: Identity = OWNER, owner: bool = True) -> sql.StatementResult:
    """Compile and run one statement in its own mutable transaction (rolled back on error)."""
    tx = ds.begin_mut_tx()
    try:
        result = sql.execute(sql.compile(text, tx, caller, owner), tx)
    except BaseException:
        ds.rollback(tx)
        raise
    ds.commit(tx)
    return result
