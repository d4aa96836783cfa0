"""Stateful property test: a durable RelationalDB against a model (dict of sets), across commits, rollbacks,
snapshots and close-and-reopen cycles."""

import shutil
import tempfile

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from spacetimedb.datastore import IndexDef, TableDef, UniqueConstraintViolation
from spacetimedb.db import DbOptions, RelationalDB
from spacetimedb.sats import I64, STRING, U32, option

pytestmark = pytest.mark.slow  # real processes or long runs: ./test.sh --fast leaves these out


TABLE_NAMES = ["keyed", "bag", "opt"]


def table_def(name: str) -> TableDef:
    if name == "keyed":  # primary key: set semantics through the unique index
        return TableDef(
            name,
            [("id", U32), ("val", STRING), ("n", I64)],
            indexes=[IndexDef((0,)), IndexDef((2,))],
            unique_constraints=[((0,), None)],
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
                clash = table == "keyed" and any(r[0] == key and r != row for r in pending[table])
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
        if commit:
            self.db.commit_tx(tx)
            self.model = pending
        else:
            self.db.rollback(tx)

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


DbMachine.TestCase.settings = settings(max_examples=80, stateful_step_count=30, deadline=None)
TestDbMachine = DbMachine.TestCase
