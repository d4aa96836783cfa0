import threading

import pytest

from spacetimedb.datastore import (
    Datastore,
    IndexDef,
    IndexNotUniqueError,
    NoSuchIndexError,
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


def make_two_keys(ds: Datastore) -> tuple[int, int, int]:
    """(table id, primary key index id, name index id) of a table with an integer primary key and a unique name."""
    tx = ds.begin_mut_tx()
    schema = tx.create_table(
        TableDef(
            "account",
            [("id", U32), ("name", STRING)],
            indexes=[IndexDef((0,)), IndexDef((1,))],
            unique_constraints=[((0,), None), ((1,), None)],
            primary_key=0,
        )
    )
    ds.commit(tx)
    by_id, by_name = (index.index_id for index in schema.indexes)
    return schema.table_id, by_id, by_name


def test_rows_of_an_integer_primary_key_are_stored_under_their_key(ds):
    """What makes a find by primary key one dict lookup: the row's id is its key."""
    table_id, _, _ = make_two_keys(ds)
    tx = ds.begin_mut_tx()
    for key in (7, 3, 1_000_000):
        tx.insert(table_id, (key, f"n{key}"))
    ds.commit(tx)
    assert dict(ds.tables[table_id].rows) == {7: (7, "n7"), 3: (3, "n3"), 1_000_000: (1_000_000, "n1000000")}


def test_a_key_changed_by_another_index_is_found_by_its_new_key_and_its_old_one_is_free(ds):
    """A row keeps its id when an update through the name index changes its primary key; the key it had goes to
    the next row that takes it, under another id, and every find (the shortcut through the ids, or the index)
    gives the right row, before and after a rollback."""
    table_id, by_id, by_name = make_two_keys(ds)
    tx = ds.begin_mut_tx()
    tx.insert(table_id, (1, "a"))
    tx.insert(table_id, (2, "b"))
    ds.commit(tx)
    tx = ds.begin_mut_tx()
    tx.update(table_id, by_name, (5, "a"))  # stays under id 1
    tx.insert(table_id, (1, "c"))  # id 1 is taken: another one
    tx.insert(table_id, (3, "d"))
    found = {key: tx.find(table_id, by_id, key) for key in range(7)}
    assert found == {0: None, 1: (1, "c"), 2: (2, "b"), 3: (3, "d"), 4: None, 5: (5, "a"), 6: None}
    assert [tx.find(table_id, by_name, name) for name in "acd"] == [(5, "a"), (1, "c"), (3, "d")]
    tx.update(table_id, by_id, (1, "c2"))
    tx.update(table_id, by_id, (5, "a2"))
    assert tx.delete_by_key(table_id, by_id, 2) == 1
    ds.commit(tx)
    with ds.begin_tx() as read:
        assert sorted(read.scan(table_id)) == [(1, "c2"), (3, "d"), (5, "a2")]
        assert [read.find(table_id, by_id, key) for key in (1, 2, 5)] == [(1, "c2"), None, (5, "a2")]
        rows = ds.tables[table_id].rows
        assert len(rows) == len(set(rows)) == 3
    tx = ds.begin_mut_tx()
    tx.update(table_id, by_name, (6, "c2"))
    tx.insert(table_id, (1, "e"))
    tx.rollback()
    with ds.begin_tx() as read:
        assert sorted(read.scan(table_id)) == [(1, "c2"), (3, "d"), (5, "a2")]
        assert [read.find(table_id, by_id, key) for key in (1, 5, 6)] == [(1, "c2"), (5, "a2"), None]


def test_a_find_after_a_schema_change_in_the_same_transaction_sees_the_new_schema(ds):
    """A transaction remembers the unique index it found last; dropping that index, or the table, in the same
    transaction makes it look again (and fail), and a rollback leaves the index working."""
    table_id, by_id, by_name = make_two_keys(ds)
    tx = ds.begin_mut_tx()
    tx.insert(table_id, (1, "a"))
    assert tx.find(table_id, by_name, "a") == (1, "a")
    tx.drop_index(table_id, by_name)
    with pytest.raises(NoSuchIndexError):
        tx.find(table_id, by_name, "a")
    assert tx.find(table_id, by_id, 1) == (1, "a")
    tx.drop_table(table_id)
    with pytest.raises(NoSuchTableError):
        tx.find(table_id, by_id, 1)
    tx.rollback()
    tx = ds.begin_mut_tx()
    tx.insert(table_id, (2, "b"))
    assert tx.find(table_id, by_name, "b") == (2, "b")
    tx.update(table_id, by_name, (3, "b"))
    assert tx.find(table_id, by_id, 3) == (3, "b") and tx.find(table_id, by_id, 2) is None
    ds.commit(tx)


def test_rows_of_a_string_primary_key_keep_counted_ids(ds):
    tx = ds.begin_mut_tx()
    schema = tx.create_table(
        TableDef(
            "tag",
            [("name", STRING)],
            indexes=[IndexDef((0,))],
            unique_constraints=[((0,), None)],
            primary_key=0,
        )
    )
    tx.insert(schema.table_id, ("x",))
    tx.insert(schema.table_id, ("y",))
    ds.commit(tx)
    assert all(isinstance(rid, int) for rid in ds.tables[schema.table_id].rows)
    with ds.begin_tx() as read:
        assert read.find(schema.table_id, schema.indexes[0].index_id, "y") == ("y",)
