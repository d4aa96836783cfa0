"""Snapshots: atomic, checksummed, newest valid one wins, corrupt ones are skipped and reported."""

from __future__ import annotations

import logging

import pytest

from spacetimedb.datastore import TableDef
from spacetimedb.db import DbOptions, RelationalDB
from spacetimedb.durability import Snapshot, SnapshotError, SnapshotRepo
from spacetimedb.durability.snapshot import read_snapshot_file
from spacetimedb.sats import U64

TABLES = {
    1: [b"system row", b""],
    4096: [b"x" * 200, b"short"],
    4097: [],
}


def test_write_then_read_back(tmp_path):
    repo = SnapshotRepo(tmp_path / "snapshots")
    path = repo.write(41, TABLES, meta=b"schema v3")
    assert path.name == "00000000000000000041.snapshot"
    snapshot = repo.latest()
    assert snapshot == Snapshot(offset=41, tables=TABLES, meta=b"schema v3", path=path)
    assert repo.read(41) == snapshot
    assert repo.skipped == []


def test_write_leaves_no_temp_files_and_overwrites_atomically(tmp_path):
    repo = SnapshotRepo(tmp_path)
    repo.write(5, {1: [b"old"]})
    repo.write(5, {1: [b"new"]})
    assert [p.name for p in tmp_path.iterdir()] == ["00000000000000000005.snapshot"]
    assert repo.latest().tables == {1: [b"new"]}


def test_latest_is_the_newest_within_max_offset(tmp_path):
    repo = SnapshotRepo(tmp_path)
    for offset in (10, 200, 3000):
        repo.write(offset, {1: [b"%d" % offset]})
    assert repo.offsets() == [10, 200, 3000]
    assert repo.latest().offset == 3000
    assert repo.latest(max_offset=2999).offset == 200
    assert repo.latest(max_offset=200).offset == 200
    assert repo.latest(max_offset=9) is None


def test_empty_or_missing_directory_has_no_snapshot(tmp_path):
    assert SnapshotRepo(tmp_path / "absent").latest() is None
    assert SnapshotRepo(tmp_path).latest() is None


@pytest.mark.parametrize("damage", ["bit_flip", "truncated", "empty", "trailing_garbage", "wrong_name"])
def test_corrupt_newest_snapshot_is_skipped_for_an_older_one(tmp_path, caplog, damage):
    repo = SnapshotRepo(tmp_path)
    repo.write(10, {1: [b"older"]})
    newest = repo.write(20, TABLES)
    data = newest.read_bytes()
    if damage == "bit_flip":
        newest.write_bytes(data[:30] + bytes([data[30] ^ 0x08]) + data[31:])
    elif damage == "truncated":
        newest.write_bytes(data[:-1])
    elif damage == "empty":
        newest.write_bytes(b"")
    elif damage == "trailing_garbage":
        newest.write_bytes(data + b"\x00")
    else:
        newest.rename(tmp_path / "00000000000000000030.snapshot")
        newest = tmp_path / "00000000000000000030.snapshot"
    with caplog.at_level(logging.WARNING):
        snapshot = repo.latest()
    assert snapshot is not None and snapshot.offset == 10 and snapshot.tables == {1: [b"older"]}
    assert [s.path for s in repo.skipped] == [newest]
    assert "skipping snapshot" in caplog.text and newest.name in caplog.text


def test_every_bit_flip_is_detected(tmp_path):
    repo = SnapshotRepo(tmp_path)
    path = repo.write(7, {1: [b"a", b"bc"], 2: [b"d" * 130]}, meta=b"m")
    original = path.read_bytes()
    for bit in range(len(original) * 8):
        damaged = bytearray(original)
        damaged[bit // 8] ^= 1 << (bit % 8)
        path.write_bytes(bytes(damaged))
        with pytest.raises(SnapshotError):
            read_snapshot_file(path)
    path.write_bytes(original)
    assert read_snapshot_file(path).tables == {1: [b"a", b"bc"], 2: [b"d" * 130]}


def test_all_corrupt_means_no_snapshot(tmp_path):
    repo = SnapshotRepo(tmp_path)
    repo.write(1, {}).write_bytes(b"garbage")
    assert repo.latest() is None
    assert len(repo.skipped) == 1 and "too short" in repo.skipped[0].reason


def test_temp_files_of_interrupted_writes_are_ignored_and_removable(tmp_path):
    repo = SnapshotRepo(tmp_path)
    repo.write(3, {1: [b"row"]})
    leftover = tmp_path / ".00000000000000000009.snapshot.tmp-123-abcd"
    leftover.write_bytes(b"half written")
    assert repo.offsets() == [3]
    assert repo.latest().offset == 3
    assert repo.remove_temp_files() == [leftover]
    assert not leftover.exists()


def test_opening_a_database_removes_temp_files_of_interrupted_snapshot_writes(tmp_path, caplog):
    with RelationalDB.open(tmp_path, DbOptions(snapshot_interval=0)) as db:
        with db.mut_tx() as tx:
            table_id = tx.create_table(TableDef("t", [("v", U64)])).table_id
            tx.insert(table_id, (7,))
        db.take_snapshot(wait=True)
    snapshots = tmp_path / "snapshots"
    # what a SIGKILL in the middle of `SnapshotRepo.write` leaves (the name it writes to, half written)
    leftover = snapshots / ".00000000000000000009.snapshot.tmp-4242-0badcafe"
    leftover.write_bytes(b"half a snapshot")
    with caplog.at_level(logging.WARNING, logger="spacetimedb.db"), RelationalDB.open(tmp_path) as db:
        assert not leftover.exists()
        with db.read_tx() as tx:
            assert list(tx.scan(table_id)) == [(7,)]
    assert sorted(p.name for p in snapshots.iterdir()) == ["00000000000000000000.snapshot"]
    assert any(str(leftover) in record.getMessage() for record in caplog.records)


def test_bad_arguments(tmp_path):
    repo = SnapshotRepo(tmp_path)
    with pytest.raises(ValueError):
        repo.write(-1, {})
    with pytest.raises(ValueError):
        repo.write(1, {2**32: []})
    with pytest.raises(TypeError):
        repo.write(1, {1: ["text"]})  # type: ignore[list-item]
    assert list(tmp_path.iterdir()) == []


def test_large_snapshot_round_trip(tmp_path):
    tables = {table: [bytes([table % 256]) * (i % 300) for i in range(5000)] for table in range(20)}
    repo = SnapshotRepo(tmp_path)
    repo.write(123456, tables, meta=b"\x00" * 1000)
    snapshot = repo.latest()
    assert snapshot.tables == tables and snapshot.meta == b"\x00" * 1000
