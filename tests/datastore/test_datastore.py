import threading

import pytest

from spacetimedb.datastore import (
    Datastore,
    IndexDef,
    IndexNotUniqueError,
    NoSuchRowError,
    NoSuchTableError,
    SchemaError,
    SequenceDef,
    TableDef,
    TransactionClosedError,
    UniqueConstraintViolation,
)
from spacetimedb.sats import BOOL, STRING, U8, U32, U64, EncodeError, option


def make_person(ds: Datastore):
    tx = ds.begin_mut_tx()
    schema = tx.create_table(
        TableDef(
            "person",
            [("id", U64), ("name", STRING), ("age", U8)],
            indexes=[IndexDef((0,)), IndexDef((1,)), IndexDef((2,))],
            unique_constraints=[((0,), None), ((1,), None)],
            sequences=[SequenceDef(0)],
            primary_key=0,
        )
    )
    ds.commit(tx)
    return schema


@pytest.fixture
def ds():
    return Datastore()


def test_bootstrap_describes_system_tables(ds):
    with ds.begin_tx() as tx:
        names = {row[1] for row in tx.scan(1)}
        assert {
            "st_table",
            "st_column",
            "st_index",
            "st_constraint",
            "st_sequence",
            "st_module",
            "st_client",
            "st_var",
            "st_scheduled",
            "st_row_level_security",
        } <= names
        assert all(s.is_system for s in tx.schemas())


def test_create_insert_commit_and_generated_names(ds):
    schema = make_person(ds)
    assert schema.table_id >= 4096
    assert [i.name for i in schema.indexes] == [
        "person_id_idx_btree",
        "person_name_idx_btree",
        "person_age_idx_btree",
    ]
    assert [c.name for c in schema.constraints] == ["person_id_key", "person_name_key"]
    assert schema.sequences[0].name == "person_id_seq"
    tx = ds.begin_mut_tx()
    assert tx.insert(schema.table_id, (0, "ann", 30)) == (1, "ann", 30)
    assert tx.insert(schema.table_id, (0, "bob", 40)) == (2, "bob", 40)
    assert tx.insert(schema.table_id, (7, "cid", 50)) == (7, "cid", 50)
    data = ds.commit(tx)
    changes = data.for_table(schema.table_id)
    assert changes.table_name == "person" and len(changes.inserts) == 3 and not changes.deletes
    assert data.for_table(3) is not None  # the sequence's persisted bound is part of the transaction
    assert changes.insert_bytes[0] == b"\x01" + b"\x00" * 7 + b"\x03\x00\x00\x00ann\x1e"


def test_set_semantics_and_delete_missing(ds):
    schema = make_person(ds)
    tx = ds.begin_mut_tx()
    row = tx.insert(schema.table_id, (5, "e", 1))
    assert tx.insert(schema.table_id, (5, "e", 1)) == row
    assert tx.count(schema.table_id) == 1
    assert tx.delete(schema.table_id, (9, "zz", 1)) is False
    data = ds.commit(tx)
    assert len(data.for_table(schema.table_id).inserts) == 1


def test_unique_violation_leaves_tx_usable(ds):
    schema = make_person(ds)
    tx = ds.begin_mut_tx()
    tx.insert(schema.table_id, (1, "a", 1))
    with pytest.raises(UniqueConstraintViolation) as info:
        tx.insert(schema.table_id, (1, "b", 2))
    assert info.value.table == "person" and info.value.columns == ("id",) and info.value.value == 1
    with pytest.raises(UniqueConstraintViolation):
        tx.insert(schema.table_id, (2, "a", 2))
    tx.insert(schema.table_id, (2, "b", 2))
    assert sorted(tx.scan(schema.table_id)) == [(1, "a", 1), (2, "b", 2)]
    ds.commit(tx)


def test_type_errors_are_refused_before_any_change(ds):
    schema = make_person(ds)
    tx = ds.begin_mut_tx()
    with pytest.raises(EncodeError, match="out of range for U8"):
        tx.insert(schema.table_id, (1, "a", 300))
    with pytest.raises(TypeError):
        tx.insert(schema.table_id, [1, "a", 3])
    assert tx.count(schema.table_id) == 0
    ds.rollback(tx)


def test_rollback_restores_everything(ds):
    schema = make_person(ds)
    tx = ds.begin_mut_tx()
    for i in range(1, 6):
        tx.insert(schema.table_id, (i, f"p{i}", i))
    ds.commit(tx)
    tx = ds.begin_mut_tx()
    pk = schema.indexes[0].index_id
    tx.update(schema.table_id, pk, (1, "p1-new", 10))
    tx.delete(schema.table_id, (2, "p2", 2))
    tx.insert(schema.table_id, (50, "fresh", 9))
    tx.delete(schema.table_id, (3, "p3", 3))
    tx.insert(schema.table_id, (3, "p3", 3))
    ds.rollback(tx)
    with ds.begin_tx() as r:
        assert sorted(r.scan(schema.table_id)) == [(i, f"p{i}", i) for i in range(1, 6)]
        assert r.find(schema.table_id, pk, 1) == (1, "p1", 1)
        assert r.seek(schema.table_id, schema.indexes[1].index_id, "p1-new") == []
        assert r.range(schema.table_id, schema.indexes[2].index_id, 2, 4, True, True) == [
            (2, "p2", 2),
            (3, "p3", 3),
            (4, "p4", 4),
        ]
    with pytest.raises(TransactionClosedError):
        ds.commit(tx)


def test_update_and_net_changes(ds):
    schema = make_person(ds)
    pk = schema.indexes[0].index_id
    tx = ds.begin_mut_tx()
    tx.insert(schema.table_id, (1, "a", 1))
    tx.insert(schema.table_id, (2, "b", 2))
    ds.commit(tx)
    tx = ds.begin_mut_tx()
    tx.update(schema.table_id, pk, (1, "a2", 1))
    tx.update(schema.table_id, pk, (1, "a3", 1))
    tx.delete(schema.table_id, (2, "b", 2))
    tx.insert(schema.table_id, (2, "b", 2))  # put back: cancels out
    with pytest.raises(UniqueConstraintViolation):
        tx.update(schema.table_id, pk, (1, "b", 1))
    with pytest.raises(NoSuchRowError):
        tx.update(schema.table_id, pk, (99, "x", 1))
    with pytest.raises(IndexNotUniqueError):
        tx.update(schema.table_id, schema.indexes[2].index_id, (1, "x", 1))
    data = ds.commit(tx)
    (changes,) = data.tables
    assert changes.inserts == [(1, "a3", 1)] and changes.deletes == [(1, "a", 1)]
    assert changes.delete_bytes[0] == ds.tables[schema.table_id].encode((1, "a", 1))


def test_multi_column_index_prefix_and_range(ds):
    tx = ds.begin_mut_tx()
    schema = tx.create_table(
        TableDef("score", [("game", U32), ("player", STRING), ("points", U32)], indexes=[IndexDef((0, 2))])
    )
    rows = [(g, f"p{i}", p) for g in (1, 2) for i, p in enumerate((5, 10, 15, 20))]
    for row in rows:
        tx.insert(schema.table_id, row)
    ds.commit(tx)
    index = schema.indexes[0].index_id
    with ds.begin_tx() as r:
        assert sorted(r.prefix(schema.table_id, index, (1,))) == sorted(x for x in rows if x[0] == 1)
        got = r.prefix_range(schema.table_id, index, (2,), 10, 20, True, False)
        assert got == [(2, "p1", 10), (2, "p2", 15)]
        got = r.prefix_range(schema.table_id, index, (2,), 10, None, False, False)
        assert got == [(2, "p2", 15), (2, "p3", 20)]
        assert r.seek(schema.table_id, index, (1, 15)) == [(1, "p2", 15)]


def test_option_column_ranges_use_sats_order(ds):
    tx = ds.begin_mut_tx()
    schema = tx.create_table(TableDef("t", [("v", option(U32)), ("b", BOOL)], indexes=[IndexDef((0,))]))
    for v in (None, 3, 1, 2):
        tx.insert(schema.table_id, (v, True))
    ds.commit(tx)
    with ds.begin_tx() as r:
        assert [row[0] for row in r.range(schema.table_id, schema.indexes[0].index_id)] == [1, 2, 3, None]


def test_schema_changes_are_transactional(ds):
    schema = make_person(ds)
    tx = ds.begin_mut_tx()
    tx.insert(schema.table_id, (1, "a", 1))
    ds.commit(tx)
    tx = ds.begin_mut_tx()
    other = tx.create_table(TableDef("other", [("x", U32)]))
    tx.drop_table(schema.table_id)
    assert tx.table_id("person") is None and tx.table_id("other") == other.table_id
    ds.rollback(tx)
    with ds.begin_tx() as r:
        assert r.table_id("other") is None
        assert list(r.scan(schema.table_id)) == [(1, "a", 1)]
    tx = ds.begin_mut_tx()
    index_id = tx.create_index(schema.table_id, IndexDef((2,), name="by_age_2"))
    tx.set_table_access(schema.table_id, public=False)
    ds.commit(tx)
    with ds.begin_tx() as r:
        s = r.schema(schema.table_id)
        assert not s.public and s.index_named("by_age_2") is not None
        assert r.seek(schema.table_id, index_id, 1) == [(1, "a", 1)]
    with pytest.raises(SchemaError):
        tx = ds.begin_mut_tx()
        try:
            tx.create_table(TableDef("person", [("x", U32)]))
        finally:
            ds.rollback(tx)


def test_unique_index_on_duplicate_data_is_refused(ds):
    schema = make_person(ds)
    tx = ds.begin_mut_tx()
    tx.insert(schema.table_id, (1, "a", 7))
    tx.insert(schema.table_id, (2, "b", 7))
    ds.commit(tx)
    tx = ds.begin_mut_tx()
    with pytest.raises(UniqueConstraintViolation):
        tx.create_index(schema.table_id, IndexDef((2,)), unique=True)
    ds.rollback(tx)
    with ds.begin_tx() as r:
        assert len(r.schema(schema.table_id).indexes) == 3


def test_sequences_persist_bounds_and_rollback_keeps_values_unique(ds):
    schema = make_person(ds)
    tx = ds.begin_mut_tx()
    first = tx.insert(schema.table_id, (0, "a", 1))[0]
    ds.rollback(tx)
    tx = ds.begin_mut_tx()
    second = tx.insert(schema.table_id, (0, "a", 1))[0]
    ds.commit(tx)
    assert second > first  # a rolled-back value is skipped, never reissued
    with ds.begin_tx() as r:
        seq_rows = [row for row in r.scan(3) if row[2] == schema.table_id]
        assert seq_rows[0][8] > second  # the persisted bound covers every issued value


def test_snapshot_export_import_round_trip(ds):
    schema = make_person(ds)
    tx = ds.begin_mut_tx()
    for i in range(20):
        tx.insert(schema.table_id, (0, f"n{i}", i))
    ds.commit(tx)
    copy = Datastore()
    copy.import_rows(ds.export_rows())
    with copy.begin_tx() as r, ds.begin_tx() as original:
        assert sorted(r.scan(schema.table_id)) == sorted(original.scan(schema.table_id))
        assert r.schema(schema.table_id) == original.schema(schema.table_id)
    tx = copy.begin_mut_tx()
    new_id = tx.insert(schema.table_id, (0, "after", 1))[0]
    assert new_id > 20
    copy.commit(tx)


def test_read_tx_waits_for_writer_and_sees_only_committed(ds):
    schema = make_person(ds)
    tx = ds.begin_mut_tx()
    tx.insert(schema.table_id, (1, "uncommitted", 1))
    seen = []
    started = threading.Event()

    def reader():
        started.set()
        with ds.begin_tx() as r:
            seen.append(sorted(r.scan(schema.table_id)))

    thread = threading.Thread(target=reader)
    thread.start()
    started.wait()
    thread.join(0.2)
    assert thread.is_alive() and not seen  # blocked behind the open mutable transaction
    ds.rollback(tx)
    thread.join(5)
    assert seen == [[]]


def test_concurrent_readers_share_the_lock(ds):
    make_person(ds)
    a = ds.begin_tx()
    b = ds.begin_tx()  # a second reader does not block
    a.release()
    b.release()
    with pytest.raises(NoSuchTableError):
        ds.begin_tx().table(123456)


def test_write_lock_is_not_reentrant(ds):
    tx = ds.begin_mut_tx()
    with pytest.raises(RuntimeError, match="not reentrant"):
        ds.begin_mut_tx()
    ds.rollback(tx)
