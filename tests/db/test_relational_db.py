import os

import pytest

from spacetimedb.commitlog import Commitlog, TxInputs, decode_tx_record
from spacetimedb.datastore import IndexDef, SequenceDef, TableDef
from spacetimedb.db import DbOptions, RelationalDB
from spacetimedb.durability import DatabaseLockedError, DurabilityFailedError
from spacetimedb.sats import STRING, U64


def person_def() -> TableDef:
    return TableDef(
        "person",
        [("id", U64), ("name", STRING)],
        indexes=[IndexDef((0,))],
        unique_constraints=[((0,), None)],
        sequences=[SequenceDef(0)],
        primary_key=0,
    )


def test_sequences_never_repeat_across_restarts(tmp_path):
    issued = []
    for round_ in range(4):
        with RelationalDB.open(tmp_path) as db:
            with db.mut_tx() as tx:
                table_id = tx.table_id("person") or tx.create_table(person_def()).table_id
            for i in range(5):
                with db.mut_tx() as tx:
                    issued.append(tx.insert(table_id, (0, f"r{round_}-{i}"))[0])
            tx = db.begin_mut_tx()
            tx.insert(table_id, (0, "rolled back"))
            db.rollback(tx)
    assert len(issued) == len(set(issued)) == 20
    assert issued == sorted(issued)


def test_inputs_are_recorded_in_the_log(tmp_path):
    with RelationalDB.open(tmp_path) as db:
        with db.mut_tx() as tx:
            table_id = tx.create_table(person_def()).table_id
        tx = db.begin_mut_tx()
        tx.insert(table_id, (0, "x"))
        inputs = TxInputs("add_person", b"\x01" * 32, b"\x02" * 16, 1234, b"\x01\x00\x00\x00x")
        result = db.commit_tx(tx, inputs)
        assert result.offset == 1 and db.wait_durable(1, 5)
        empty = db.commit_tx(db.begin_mut_tx())
        assert empty.offset is None and empty.tx_data.is_empty()
    clog = Commitlog.open(tmp_path / "clog")
    try:
        records = [decode_tx_record(p) for _, p in clog.transactions_from(0)]
    finally:
        clog.close()
    assert len(records) == 2
    assert records[1].inputs == inputs


def test_second_open_is_refused(tmp_path):
    with RelationalDB.open(tmp_path), pytest.raises(DatabaseLockedError, match=str(os.getpid())):
        RelationalDB.open(tmp_path)


def test_corrupt_newest_snapshot_falls_back(tmp_path):
    with RelationalDB.open(tmp_path, DbOptions(snapshot_interval=0)) as db:
        with db.mut_tx() as tx:
            table_id = tx.create_table(person_def()).table_id
        with db.mut_tx() as tx:
            tx.insert(table_id, (0, "a"))
        db.take_snapshot(wait=True)
        with db.mut_tx() as tx:
            tx.insert(table_id, (0, "b"))
        db.take_snapshot(wait=True)
        with db.mut_tx() as tx:
            tx.insert(table_id, (0, "c"))
    newest = sorted((tmp_path / "snapshots").iterdir())[-1]
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    newest.write_bytes(bytes(data))
    with RelationalDB.open(tmp_path) as db:
        assert db.open_stats.snapshot_offset == 1
        assert db.open_stats.replayed == 2
        with db.read_tx() as tx:
            assert sorted(r[1] for r in tx.scan(table_id)) == ["a", "b", "c"]


def test_in_memory_database_notifies_listeners_at_commit():
    db = RelationalDB.in_memory()
    seen = []
    db.add_durable_listener(seen.append)
    with db.mut_tx() as tx:
        table_id = tx.create_table(person_def()).table_id
    with db.mut_tx() as tx:
        tx.insert(table_id, (0, "a"))
    assert seen == [0, 1] and db.durable_offset() == 1 and db.wait_durable(1)


def test_schema_changes_replay(tmp_path):
    with RelationalDB.open(tmp_path) as db:
        with db.mut_tx() as tx:
            table_id = tx.create_table(person_def()).table_id
            tx.insert(table_id, (0, "a"))
        with db.mut_tx() as tx:
            tx.create_index(table_id, IndexDef((1,), name="by_name"))
            tx.set_table_access(table_id, public=False)
        with db.mut_tx() as tx:
            gone = tx.create_table(TableDef("gone", [("x", U64)])).table_id
            tx.insert(gone, (5,))
        with db.mut_tx() as tx:
            tx.drop_table(gone)
    with RelationalDB.open(tmp_path) as db, db.read_tx() as tx:
        schema = tx.schema(table_id)
        assert not schema.public and schema.index_named("by_name") is not None
        assert tx.table_id("gone") is None
        assert tx.seek(table_id, schema.index_named("by_name").index_id, "a") == [(1, "a")]


def test_a_commit_whose_record_cannot_be_logged_is_undone(tmp_path, monkeypatch):
    """A record over the commit limit, or a durability that has failed, refuses the commit: the transaction is
    undone in memory (memory never gets ahead of the log) and the writer lock is free for the next one."""
    with RelationalDB.open(tmp_path) as db:
        with db.mut_tx() as tx:
            table_id = tx.create_table(person_def()).table_id
            tx.insert(table_id, (0, "kept"))
        durability = db._durability
        assert durability is not None

        # the durability refuses records as once its disk failed (then it stays refusing: undone below)
        monkeypatch.setattr(durability, "_failure", OSError(5, "Input/output error"))
        tx = db.begin_mut_tx()
        tx.insert(table_id, (0, "lost"))
        assert sorted(row[1] for row in tx.scan(table_id)) == ["kept", "lost"]
        with pytest.raises(DurabilityFailedError, match="Input/output error"):
            db.commit_tx(tx)
        monkeypatch.undo()
        with db.read_tx() as read:
            assert [row[1] for row in read.scan(table_id)] == ["kept"]
        with db.mut_tx() as tx:  # the lock was released
            tx.insert(table_id, (0, "next"))
    with RelationalDB.open(tmp_path) as db, db.read_tx() as read:
        assert sorted(row[1] for row in read.scan(read.table_id("person"))) == ["kept", "next"]
