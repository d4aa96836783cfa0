"""Datastore micro-benchmarks in the style of SpacetimeDB's crates/bench, against Python's sqlite3.

Run: .venv/bin/python bench/datastore.py [--repeat N]

Workloads, each one transaction (begin ... commit) on a table person(id u32 primary key, age u64, name str)
with a btree index on every column, pre-filled with 2048 rows:
  empty tx; insert 256 rows; iterate 256 rows; update 256 rows by primary key; filter by an indexed column
  (~256 of 2048 match); point lookup by primary key.
Peers, same data, same run: sqlite3 ``:memory:`` and a file in WAL mode with ``synchronous=OFF``.
Prints the median time per transaction and our time / sqlite time (below 1 = we are faster).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable

from spacetimedb.datastore import Datastore, IndexDef, TableDef
from spacetimedb.sats import STRING, U32, U64

ROWS = 2048
BATCH = 256
AGE_BUCKETS = ROWS // BATCH  # ages cycle through 8 values, so one value matches 256 rows


def person(i: int) -> tuple[int, int, str]:
    return (i, i % AGE_BUCKETS, f"name-{i}")


class Ours:
    name = "ours"

    def __init__(self) -> None:
        self.ds = Datastore()
        tx = self.ds.begin_mut_tx()
        schema = tx.create_table(
            TableDef(
                "person",
                [("id", U32), ("age", U64), ("name", STRING)],
                indexes=[IndexDef((0,)), IndexDef((1,)), IndexDef((2,))],
                unique_constraints=[((0,), None)],
                primary_key=0,
            )
        )
        self.table_id = schema.table_id
        self.pk = schema.indexes[0].index_id
        self.age_index = schema.indexes[1].index_id
        for i in range(ROWS):
            tx.insert(self.table_id, person(i))
        self.ds.commit(tx)

    def empty(self) -> None:
        self.ds.commit(self.ds.begin_mut_tx())

    def insert_batch(self) -> None:
        tx = self.ds.begin_mut_tx()
        insert, tid = tx.insert, self.table_id
        for i in range(ROWS, ROWS + BATCH):
            insert(tid, person(i))
        self.ds.commit(tx)

    def undo_insert_batch(self) -> None:
        tx = self.ds.begin_mut_tx()
        tx.delete_by_range(self.table_id, self.pk, ROWS, None)
        self.ds.commit(tx)

    def iterate(self) -> None:
        tx = self.ds.begin_tx()
        n = 0
        for _ in tx.range(self.table_id, self.pk, 0, BATCH):
            n += 1
        tx.release()
        assert n == BATCH

    def update_batch(self) -> None:
        tx = self.ds.begin_mut_tx()
        find, update, tid, pk = tx.find, tx.update, self.table_id, self.pk
        for i in range(BATCH):
            row = find(tid, pk, i)
            assert row is not None
            update(tid, pk, (row[0], row[1], row[2] + "!" if len(row[2]) < 40 else row[2][:10]))
        self.ds.commit(tx)

    def filter(self) -> None:
        tx = self.ds.begin_tx()
        rows = tx.seek(self.table_id, self.age_index, 3)
        tx.release()
        assert len(rows) >= BATCH

    def point(self) -> None:
        tx = self.ds.begin_tx()
        row = tx.find(self.table_id, self.pk, 1234)
        tx.release()
        assert row is not None


class Sqlite:
    def __init__(self, path: str | None) -> None:
        self.name = "sqlite :memory:" if path is None else "sqlite WAL sync=OFF"
        self.db = sqlite3.connect(path or ":memory:", isolation_level=None)
        if path is not None:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute(
            "CREATE TABLE person (id INTEGER PRIMARY KEY, age INTEGER NOT NULL, name TEXT NOT NULL)"
        )
        self.db.execute("CREATE INDEX person_age ON person(age)")
        self.db.execute("CREATE INDEX person_name ON person(name)")
        self.db.execute("BEGIN")
        self.db.executemany("INSERT INTO person VALUES (?, ?, ?)", [person(i) for i in range(ROWS)])
        self.db.execute("COMMIT")

    def empty(self) -> None:
        self.db.execute("BEGIN")
        self.db.execute("COMMIT")

    def insert_batch(self) -> None:
        self.db.execute("BEGIN")
        self.db.executemany(
            "INSERT INTO person VALUES (?, ?, ?)", [person(i) for i in range(ROWS, ROWS + BATCH)]
        )
        self.db.execute("COMMIT")

    def undo_insert_batch(self) -> None:
        self.db.execute("DELETE FROM person WHERE id >= ?", (ROWS,))

    def iterate(self) -> None:
        n = 0
        for _ in self.db.execute("SELECT * FROM person WHERE id >= 0 AND id < ?", (BATCH,)):
            n += 1
        assert n == BATCH

    def update_batch(self) -> None:
        db = self.db
        db.execute("BEGIN")
        for i in range(BATCH):
            row = db.execute("SELECT id, age, name FROM person WHERE id = ?", (i,)).fetchone()
            name = row[2] + "!" if len(row[2]) < 40 else row[2][:10]
            db.execute("UPDATE person SET age = ?, name = ? WHERE id = ?", (row[1], name, row[0]))
        db.execute("COMMIT")

    def filter(self) -> None:
        rows = self.db.execute("SELECT * FROM person WHERE age = ?", (3,)).fetchall()
        assert len(rows) >= BATCH

    def point(self) -> None:
        row = self.db.execute("SELECT * FROM person WHERE id = ?", (1234,)).fetchone()
        assert row is not None


WORKLOADS = ["empty", "insert_batch", "iterate", "update_batch", "filter", "point"]
LABELS = {
    "empty": "empty transaction",
    "insert_batch": f"insert {BATCH} rows",
    "iterate": f"iterate {BATCH} rows",
    "update_batch": f"update {BATCH} rows by pk",
    "filter": f"filter indexed (~{BATCH} of {ROWS})",
    "point": "point lookup by pk",
}


def measure(fn: Callable[[], None], undo: Callable[[], None] | None, repeat: int) -> float:
    """Median seconds per call over ``repeat`` calls (after a warm-up); ``undo`` runs untimed after each."""
    samples = []
    for i in range(repeat + 3):
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        if undo is not None:
            undo()
        if i >= 3:
            samples.append(elapsed)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        systems = [Ours(), Sqlite(None), Sqlite(os.path.join(tmp, "bench.sqlite"))]
        print(
            f"{'workload':30}"
            + "".join(f"{s.name:>22}" for s in systems)
            + f"{'ours/:memory:':>15}{'ours/WAL':>10}"
        )
        for workload in WORKLOADS:
            times = [
                measure(getattr(s, workload), getattr(s, f"undo_{workload}", None), args.repeat)
                for s in systems
            ]
            cells = "".join(f"{t * 1e6:>19.1f} us" for t in times)
            print(f"{LABELS[workload]:30}{cells}{times[0] / times[1]:>15.2f}{times[0] / times[2]:>10.2f}")


if __name__ == "__main__":
    main()
