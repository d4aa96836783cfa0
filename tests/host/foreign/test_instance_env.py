"""The syscalls of ``InstanceEnv`` over a real transaction: ids by name, scans and iterators, writes with
generated-column write-back, deletes, and the errnos SpacetimeDB gives for each refusal."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import pytest

from spacetimedb.host.foreign import abi
from spacetimedb.host.foreign.abi import BufferTooSmall, HostCallError, InstanceEnv
from spacetimedb.module import load_module
from spacetimedb.module.slots import TxSlot
from spacetimedb.module.views import ReadOnlyTx
from spacetimedb.sats import ConnectionId, Identity, encode
from spacetimedb.sats.types import I64, U32, U64, ProductType

from ..helpers import DB, OWNER, LocalDatabases

SOURCE = b"""
from typing import Annotated
from spacetimedb import AutoInc, Index, PrimaryKey, reducer, table, i64, u32, u64

@table(public=True, indexes=[Index.btree("owner", "score", name="by_owner_score")])
class Item:
    id: Annotated[u64, PrimaryKey, AutoInc]
    owner: u32
    score: i64
    tag: Annotated[u32, Index.hash]

@reducer
def noop(ctx) -> None:
    pass
"""
ROW = ProductType.of(("id", U64), ("owner", U32), ("score", I64), ("tag", U32))


def row(id_: int, owner: int, score: int, tag: int = 0) -> bytes:
    return encode(ROW, (id_, owner, score, tag))


def bound(tag: int, value: bytes = b"") -> bytes:
    return bytes([tag]) + value


@pytest.fixture
def env() -> Iterator[InstanceEnv]:
    dbs = LocalDatabases(None)
    dbs.publish(DB, OWNER, SOURCE)
    host = dbs.get_or_launch(DB)
    module_def = load_module(SOURCE).module_def
    slot = TxSlot()
    env = InstanceEnv(module_def, slot, lambda *line: logged.append(line), DB)
    logged: list[Any] = []
    env.logged = logged  # type: ignore[attr-defined]
    tx = host.db.begin_mut_tx()
    slot.tx = tx
    try:
        yield env
    finally:
        host.db.rollback(tx)
        dbs.shutdown()


def drain(env: InstanceEnv, handle: int, capacity: int = 1 << 16) -> bytes:
    out = b""
    while True:
        rows, done = env.iter_advance(handle, capacity)
        out += rows
        if done:
            return out


def test_insert_writes_back_generated_columns_and_scans_return_bsatn(env: InstanceEnv):
    table = env.table_id_from_name("item")
    generated = env.insert(table, row(0, 1, 10, 5))
    assert generated == struct.pack("<Q", 1)
    assert env.insert(table, row(0, 1, 20)) == struct.pack("<Q", 2)
    assert env.table_row_count(table) == 2
    assert drain(env, env.table_scan(table)) == row(1, 1, 10, 5) + row(2, 1, 20)


def test_iterators_fill_whole_rows_and_say_when_the_buffer_is_too_small(env: InstanceEnv):
    table = env.table_id_from_name("item")
    for score in range(3):
        env.insert(table, row(0, 1, score))
    size = len(row(1, 1, 0))
    handle = env.table_scan(table)
    with pytest.raises(BufferTooSmall) as small:
        env.iter_advance(handle, size - 1)
    assert small.value.needed == size
    first, done = env.iter_advance(handle, size + 3)
    assert (len(first), done) == (size, False)
    rest, done = env.iter_advance(handle, 10 * size)
    assert (len(rest), done) == (2 * size, True)
    with pytest.raises(HostCallError) as gone:
        env.iter_advance(handle, 100)
    assert gone.value.errno == abi.NO_SUCH_ITER


def test_index_scans_point_prefix_and_range(env: InstanceEnv):
    table = env.table_id_from_name("item")
    for owner, score in [(1, 5), (1, 15), (1, 25), (2, 15)]:
        env.insert(table, row(0, owner, score, owner))
    by_owner = env.index_id_from_name("item_owner_score_idx_btree")
    owner_1 = struct.pack("<I", 1)
    buf = owner_1 + bound(0, struct.pack("<q", 10)) + bound(2)
    found = drain(env, env.index_scan_range(by_owner, buf, 4, 1, 9, 1))
    assert found == row(2, 1, 15, 1) + row(3, 1, 25, 1)
    tag = env.index_id_from_name("item_tag_idx_hash")
    assert drain(env, env.index_scan_point(tag, struct.pack("<I", 2))) == row(4, 2, 15, 2)
    with pytest.raises(HostCallError) as wrong:
        env.index_scan_range(tag, bound(2), 0, 0, 1, 0)
    assert wrong.value.errno == abi.WRONG_INDEX_ALGO
    pk = env.index_id_from_name("item_id_idx_btree")
    excluded = bound(1, struct.pack("<Q", 2)) + bound(0, struct.pack("<Q", 4))
    assert drain(env, env.index_scan_range(pk, excluded, 0, 0, 9, 9)) == row(3, 1, 25, 1) + row(4, 2, 15, 2)


def test_update_and_deletes(env: InstanceEnv):
    table = env.table_id_from_name("item")
    for owner in (1, 1, 2, 3):
        env.insert(table, row(0, owner, 0))
    pk = env.index_id_from_name("item_id_idx_btree")
    assert env.update(table, pk, row(1, 9, 99)) == struct.pack("<Q", 1)
    with pytest.raises(HostCallError) as missing:
        env.update(table, pk, row(77, 0, 0))
    assert missing.value.errno == abi.NO_SUCH_ROW
    by_owner = env.index_id_from_name("item_owner_score_idx_btree")
    assert env.delete_by_index_scan_range(by_owner, struct.pack("<I", 1) + bound(2), 4, 1, 1, 0) == 1
    assert env.delete_by_index_scan_point(pk, struct.pack("<Q", 3)) == 1
    rows = struct.pack("<I", 2) + row(1, 9, 99) + row(55, 0, 0)
    assert env.delete_all_by_eq(table, rows) == 1
    assert env.clear(table) == 1
    assert env.table_row_count(table) == 0


def test_errnos_of_refusals(env: InstanceEnv):
    table = env.table_id_from_name("item")
    env.insert(table, row(0, 1, 1))
    cases = {
        abi.UNIQUE_ALREADY_EXISTS: lambda: env.insert(table, row(1, 2, 2)),
        abi.NO_SUCH_TABLE: lambda: env.table_id_from_name("nope"),
        abi.NO_SUCH_INDEX: lambda: env.index_id_from_name("nope"),
        abi.BSATN_DECODE_ERROR: lambda: env.insert(table, b"\x01"),
        abi.NO_SUCH_CONSOLE_TIMER: lambda: env.console_timer_end(99),
    }
    for errno, call in cases.items():
        with pytest.raises(HostCallError) as refused:
            call()
        assert refused.value.errno == errno
    st_table = 1
    with pytest.raises(HostCallError) as system:
        env.clear(st_table)
    assert system.value.errno == abi.NO_SUCH_TABLE
    assert env.table_row_count(st_table) > 0  # system tables can be read


def test_no_transaction_and_read_only_views(env: InstanceEnv):
    tx = env.slot.tx
    env.slot.tx = TxSlot().tx
    with pytest.raises(HostCallError) as outside:
        env.table_id_from_name("item")
    assert outside.value.errno == abi.NOT_IN_TRANSACTION
    env.slot.tx = tx
    env.view_slot = TxSlot()
    env.view_slot.tx = ReadOnlyTx(tx, "a view")
    env.begin_call(view=True)
    table = env.table_id_from_name("item")
    assert env.table_row_count(table) == 0
    with pytest.raises(HostCallError) as read_only:
        env.insert(table, row(0, 1, 1))
    assert read_only.value.errno == abi.TRANSACTION_IS_READ_ONLY
    env.end_call()


def test_console_identity_and_jwt(env: InstanceEnv):
    connection = ConnectionId(0x1234)
    env.begin_call(connection, '{"sub":"me"}', database_identity=Identity(7))
    env.console_log(1, "careful", "target", "lib.rs", 12)
    timer = env.console_timer_start("span")
    env.console_timer_end(timer)
    assert env.identity() == Identity(7).to_le_bytes()
    assert env.get_jwt_payload(connection.to_le_bytes()) == b'{"sub":"me"}'
    assert env.get_jwt_payload(ConnectionId(9).to_le_bytes()) == b""
    env.end_call()
    logged = env.logged  # type: ignore[attr-defined]
    assert logged[0] == ("Warn", "careful", "lib.rs", 12)
    assert logged[1][0] == "Info" and logged[1][1].startswith("Timing span 'span'")
