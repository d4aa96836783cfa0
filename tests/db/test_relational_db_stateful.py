"""Stateful property test: a durable RelationalDB against a model (dict of sets), across commits, rollbacks,
snapshots and close-and-reopen cycles."""

import shutil
import tempfile

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from spacetimedb.datastore import IndexDef, NoSuchRowError, TableDef, UniqueConstraintViolation
from spacetimedb.db import DbOptions, RelationalDB
from spacetimedb.sats import I64, STRING, U32, option

pytestmark = pytest.mark.slow  # real processes or long runs: ./test.sh --fast leaves these out


TABLE_NAMES = ["keyed", "bag", "opt", "twokeys"]


def table_def(name: str) -> TableDef:
    if name == "keyed":  # primary key: set semantics through the unique index
        return TableDef(
            name,
            [("id", U32), ("val", STRING), ("n", I64)],
            indexes=[IndexDef((0,)), IndexDef((2,))],
            unique_constraints=[((0,), None)],
            primary_key=0,
        )
    if name == "twokeys":  # an integer primary key (rows use it as their id) that updates by `name` change
        return TableDef(
            name,
            [("id", U32), ("name", STRING), ("n", I64)],
            indexes=[IndexDef((0,)), IndexDef((1,))],
            unique_constraints=[((0,), None), ((1,), None)],
            primary_key=0,
        )
    if name == "bag":  # no unique index: set semantics through the row map
        return TableDef(name, [("val", STRING), ("n", I64)], indexes=[IndexDef((1,))])
    return TableDef(name, [("id", U32), ("maybe", option(STRING))], indexes=[IndexDef((0, 1))])


ops = st.lists(
    st.tuples(
        st.sampled_from(["insert", "delete", "update"]),
        st.sampled_from(TABLE_NAMES),
        st.integers(0, 6),
        st.sampled_from(["a", "b", "c"]),
    ),
    max_size=8,
)


def make_row(table: str, key: int, text: str):
    if table == "keyed":
        return (key, text, key * 10)
    if table == "twokeys":
        return (key, text, -key)
    if table == "bag":
        return (text, key)
    return (key, None if text == "c" else text)


class DbMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="stdb-stateful-")
        self.db = RelationalDB.open(self.dir, DbOptions(max_segment_size=2048, snapshot_interval=0))
        self.model: dict[str, set] = {}
        self.ids: dict[str, int] = {}

    def teardown(self):
        self.db.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(name=st.sampled_from(TABLE_NAMES))
    def create_table(self, name):
        if name in self.model:
            return
        with self.db.mut_tx() as tx:
            self.ids[name] = tx.create_table(table_def(name)).table_id
        self.model[name] = set()

    @precondition(lambda self: self.model)
    @rule(operations=ops, commit=st.booleans())
    def transaction(self, operations, commit):
        tx = self.db.begin_mut_tx()
        pending = {name: set(rows) for name, rows in self.model.items()}
        for op, table, key, text in operations:
            if table not in pending:
                continue
            row = make_row(table, key, text)
            table_id = self.ids[table]
            if op == "insert":
                clash = any(
                    r != row and (r[0] == key or (table == "twokeys" and r[1] == text))
                    for r in pending[table]
                ) and table in ("keyed", "twokeys")
                if clash:
                    try:
                        tx.insert(table_id, row)
                        raise AssertionError("expected a unique violation")
                    except UniqueConstraintViolation:
                        pass
                else:
                    tx.insert(table_id, row)
                    pending[table].add(row)
            elif op == "delete":
                assert tx.delete(table_id, row) == (row in pending[table])
                pending[table].discard(row)
            elif op == "update" and table == "keyed":
                old = next((r for r in pending[table] if r[0] == key), None)
                if old is not None:
                    tx.update(table_id, tx.schema(table_id).indexes[0].index_id, row)
                    pending[table].discard(old)
                    pending[table].add(row)
            elif op == "update" and table == "twokeys":  # by name: the primary key may change
                self._update_by_name(tx, pending[table], row)
        if commit:
            self.db.commit_tx(tx)
            self.model = pending
        else:
            self.db.rollback(tx)

    def _update_by_name(self, tx, rows: set, row) -> None:
        table_id = self.ids["twokeys"]
        by_name = tx.schema(table_id).indexes[1].index_id
        old = next((r for r in rows if r[1] == row[1]), None)
        if old is None:
            with pytest.raises(NoSuchRowError):
                tx.update(table_id, by_name, row)
        elif any(r[0] == row[0] and r is not old for r in rows):
            with pytest.raises(UniqueConstraintViolation):
                tx.update(table_id, by_name, row)
        else:
            tx.update(table_id, by_name, row)
            rows.discard(old)
            rows.add(row)

    @rule()
    def reopen(self):
        self.db.close()
        self.db = RelationalDB.open(self.dir, DbOptions(max_segment_size=2048, snapshot_interval=0))

    @rule()
    def snapshot(self):
        self.db.take_snapshot(wait=True)

    @invariant()
    def matches_model(self):
        with self.db.read_tx() as tx:
            for name, rows in self.model.items():
                assert tx.table_id(name) == self.ids[name]
                assert set(tx.scan(self.ids[name])) == rows
                assert tx.count(self.ids[name]) == len(rows)
            if "twokeys" in self.model:  # every key finds its row through either index, and no other
                table_id = self.ids["twokeys"]
                by_id, by_name = (index.index_id for index in tx.schema(table_id).indexes)
                keyed = self.model["twokeys"]
                for key in range(7):
                    assert tx.find(table_id, by_id, key) == next((r for r in keyed if r[0] == key), None)
                for text in "abc":
                    assert tx.find(table_id, by_name, text) == next((r for r in keyed if r[1] == text), None)


DbMachine.TestCase.settings = settings(max_examples=80, stateful_step_count=30, deadline=None)
TestDbMachine = DbMachine.TestCase
