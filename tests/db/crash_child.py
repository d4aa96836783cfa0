"""Child process for the crash test: commits batches forever, printing each durable offset as it advances."""

import sys

from spacetimedb.datastore import IndexDef, TableDef
from spacetimedb.db import DbOptions, RelationalDB
from spacetimedb.sats import U64

META_ID = 10**12


def main(path: str) -> None:
    db = RelationalDB.open(path, DbOptions(max_segment_size=64 * 1024, snapshot_interval=500))
    out = sys.stdout

    def durable(offset: int) -> None:
        out.write(f"durable {offset}\n")
        out.flush()

    db.add_durable_listener(durable)
    with db.mut_tx() as tx:
        table_id = tx.create_table(
            TableDef(
                "t",
                [("id", U64), ("batch", U64)],
                indexes=[IndexDef((0,))],
                unique_constraints=[((0,), None)],
                primary_key=0,
            )
        ).table_id
    pk = db.datastore.tables[table_id].schema.indexes[0].index_id
    batch = 0
    while True:
        tx = db.begin_mut_tx()
        for k in range(3):
            tx.insert(table_id, (3 * batch + k, batch))
        if batch == 0:
            tx.insert(table_id, (META_ID, 0))
        else:
            tx.update(table_id, pk, (META_ID, batch))
        db.commit_tx(tx)
        batch += 1


if __name__ == "__main__":
    main(sys.argv[1])
