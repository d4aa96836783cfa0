"""What the module layer adds on the reducer hot path: ``ctx.db`` handles versus raw datastore calls.

Run: .venv/bin/python bench/module_handles.py [--calls N]

The keynote ``transfer`` reducer (two ``find``s by primary key, two ``update``s) over 1000 accounts, each call in
its own transaction (begin, run, commit), three ways:
  raw      the same four datastore calls on tuples, no module layer;
  handles  the reducer body through ``ctx.db`` handles, called directly;
  invoke   ``ModuleRuntime.invoke`` with decoded arguments (context, argument conversion, handles).
Also the argument decoding from BSATN alone. Prints µs per call and the module layer's overhead per call.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from spacetimedb.datastore import Datastore
from spacetimedb.module import ModuleRuntime, create_module_tables, load_module
from spacetimedb.sats import Identity, Timestamp

ACCOUNTS = 1000
MODULE = b"""
from typing import Annotated
from spacetimedb import table, reducer, ReducerContext, u64, i64, PrimaryKey

@table(public=True)
class Account:
    id: Annotated[u64, PrimaryKey]
    balance: i64

@reducer
def transfer(ctx: ReducerContext, source: u64, target: u64, amount: i64) -> None:
    a = ctx.db.account.id.find(source)
    b = ctx.db.account.id.find(target)
    if a is None or b is None:
        raise LookupError("no such account")
    a.balance -= amount
    b.balance += amount
    ctx.db.account.id.update(a)
    ctx.db.account.id.update(b)
"""


def setup() -> tuple[Datastore, ModuleRuntime]:
    loaded = load_module(MODULE)
    datastore = Datastore()
    tx = datastore.begin_mut_tx()
    create_module_tables(tx, loaded.module_def)
    runtime = ModuleRuntime(loaded)
    runtime.bind(tx)
    account = loaded.module_def.table("account").row_class
    runtime.begin_call(tx, Identity(1), None, Timestamp(0), Identity(2))
    for i in range(ACCOUNTS):
        runtime.db.account.insert(account(id=i, balance=1_000_000))
    runtime.end_call()
    datastore.commit(tx)
    return datastore, runtime


def run(label: str, calls: int, body: Callable[[int], None]) -> float:
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        for i in range(calls):
            body(i)
        samples.append((time.perf_counter() - start) / calls * 1e6)
    best = min(samples)
    print(f"{label:<34} {best:7.2f} µs/call   (median {statistics.median(samples):.2f})")
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20_000)
    calls = parser.parse_args().calls
    datastore, runtime = setup()
    table_id = runtime.table_id("account")
    index_id = runtime.tables["account"].id._index_id  # type: ignore[attr-defined]
    sender, database, now = Identity(1), Identity(2), Timestamp(1)
    reducer = runtime.module_def.reducers["transfer"].func

    def raw(i: int) -> None:
        tx = datastore.begin_mut_tx()
        a = tx.find(table_id, index_id, i % ACCOUNTS)
        b = tx.find(table_id, index_id, (i + 1) % ACCOUNTS)
        tx.update(table_id, index_id, (a[0], a[1] - 1))
        tx.update(table_id, index_id, (b[0], b[1] + 1))
        datastore.commit(tx)

    def handles(i: int) -> None:
        tx = datastore.begin_mut_tx()
        ctx = runtime.begin_call(tx, sender, None, now, database)
        reducer(ctx, i % ACCOUNTS, (i + 1) % ACCOUNTS, 1)
        runtime.end_call()
        datastore.commit(tx)

    def invoke(i: int) -> None:
        tx = datastore.begin_mut_tx()
        runtime.invoke("transfer", tx, sender, None, now, database, (i % ACCOUNTS, (i + 1) % ACCOUNTS, 1))
        datastore.commit(tx)

    encoded = [
        runtime.encode_args("transfer", (i % ACCOUNTS, (i + 1) % ACCOUNTS, 1)) for i in range(ACCOUNTS)
    ]

    def decode(i: int) -> None:
        runtime.decode_args("transfer", encoded[i % ACCOUNTS])

    base = run("raw datastore (4 calls + commit)", calls, raw)
    through_handles = run("reducer body via ctx.db handles", calls, handles)
    through_invoke = run("ModuleRuntime.invoke", calls, invoke)
    run("decode_args (BSATN, 3 args)", calls, decode)
    print(
        f"handle overhead per transfer: {through_handles - base:.2f} µs; with invoke: {through_invoke - base:.2f} µs"
    )
    print(f"=> {1e6 / through_invoke:,.0f} transfers/s through invoke (host overhead not included)")


if __name__ == "__main__":
    main()
