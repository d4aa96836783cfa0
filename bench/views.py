"""The cost per transaction of keeping a per-caller view live for many subscribed callers.

Run: .venv/bin/python bench/views.py [--callers 1000] [--items 5] [--txs 200]

One in-memory database, no network, the module host's own commit path. Each of N callers owns a few items.
Three set-ups over the same data and the same stream of transactions (a random caller reprices one of its items):

* view: every caller subscribes to ``SELECT * FROM my_items``, a ``@view`` returning the caller's items from a
  private table (what a module writes to expose private data per caller);
* rls (the peer): the same filtering as a row-level security rule on a public table
  (``SELECT * FROM item_pub WHERE owner = :sender``), every caller subscribing to ``SELECT * FROM item_pub``;
* none: nobody subscribes (the reducer and commit alone);
* scan view: the same view written with a scan of the whole table instead of the index (``my_items_by_scan``),
  so every change runs every caller's view again: the worst case, on a tenth of the transactions.

Prints, per set-up, transactions/s and the time per transaction, and the ratios to the peer.
"""

from __future__ import annotations

import argparse
import random
import time

from spacetimedb.host.database import Database
from spacetimedb.sats import Identity

ITEM_COLUMNS = """
    id: Annotated[u64, PrimaryKey, AutoInc]
    owner: Annotated[Identity, Index.btree]
    name: str
    price: u32
"""
MODULE = f"""
from typing import Annotated
from spacetimedb import (AutoInc, Identity, Index, PrimaryKey, ReducerContext, ViewContext, client_visibility_filter,
                         reducer, table, u32, u64, view)

@table(public=False)
class Item:{ITEM_COLUMNS}

@table(public=True)
class ItemPub:{ITEM_COLUMNS}

client_visibility_filter("SELECT * FROM item_pub WHERE owner = :sender")

@view(public=True)
def my_items(ctx: ViewContext) -> list[Item]:
    return list(ctx.db.item.owner.filter(ctx.sender))

@view(public=True)
def my_items_by_scan(ctx: ViewContext) -> list[Item]:
    return [item for item in ctx.db.item.iter() if item.owner == ctx.sender]

@reducer
def add(ctx: ReducerContext, name: str, price: u32) -> None:
    ctx.db.item.insert(Item(id=0, owner=ctx.sender, name=name, price=price))
    ctx.db.item_pub.insert(ItemPub(id=0, owner=ctx.sender, name=name, price=price))

@reducer
def reprice(ctx: ReducerContext, public: bool, item_id: u64, price: u32) -> None:
    handle = ctx.db.item_pub if public else ctx.db.item
    item = handle.id.find(item_id)
    item.price = price
    handle.id.update(item)
""".encode()

OWNER = Identity(0xB0)
DATABASE = Identity(0xB1)


def caller(n: int) -> Identity:
    return Identity(0xC0 << 248 | n)


def build(callers: int, items: int) -> Database:
    database = Database.create(None, DATABASE, OWNER, MODULE)
    host = database.host
    for n in range(callers):
        for i in range(items):
            assert host.call_reducer_sync("add", [f"item{i}", i], sender=caller(n), json_args=True).ok
    return database


def subscribe_all(database: Database, callers: int, query: str) -> None:
    host = database.host

    def work() -> None:
        for n in range(callers):
            with host.db.read_tx() as tx:
                host.views.subscribe_set(host.subscriptions, n, 0, [query], caller(n), False, tx)

    database.on_host_thread(work)


def unsubscribe_all(database: Database, callers: int) -> None:
    host = database.host
    database.on_host_thread(
        lambda: [host.views.unsubscribe_set(host.subscriptions, n, 0, None) for n in range(callers)]
    )


def run(database: Database, public: bool, callers: int, items: int, txs: int, seed: int) -> float:
    """Seconds per transaction (reducer + commit + subscription work), over ``txs`` sequential calls."""
    rng = random.Random(seed)
    host = database.host
    started = time.perf_counter()
    for _ in range(txs):
        who = rng.randrange(callers)
        item_id = who * items + rng.randrange(items) + 1
        args = [public, item_id, rng.randrange(1000)]
        outcome = host.call_reducer_sync("reprice", args, sender=caller(who), json_args=True)
        assert outcome.ok, outcome.message
    return (time.perf_counter() - started) / txs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callers", type=int, default=1000)
    parser.add_argument("--items", type=int, default=5, help="items per caller")
    parser.add_argument("--txs", type=int, default=200)
    args = parser.parse_args()
    print(f"building: {args.callers} callers x {args.items} items ...", flush=True)
    database = build(args.callers, args.items)
    try:
        # a different seed per run: repricing an item to the price it has changes nothing, and sends nothing
        none = run(database, False, args.callers, args.items, args.txs, 1)
        subscribe_all(database, args.callers, "SELECT * FROM my_items")
        view = run(database, False, args.callers, args.items, args.txs, 2)
        unsubscribe_all(database, args.callers)
        subscribe_all(database, args.callers, "SELECT * FROM item_pub")
        rls = run(database, True, args.callers, args.items, args.txs, 3)
        unsubscribe_all(database, args.callers)
        subscribe_all(database, args.callers, "SELECT * FROM my_items_by_scan")
        scan = run(database, False, args.callers, args.items, max(1, args.txs // 10), 4)
    finally:
        database.shutdown()
    print(f"{'set-up':<8} {'tx/s':>9} {'ms/tx':>9}")
    for name, seconds in (("none", none), ("rls", rls), ("view", view), ("scan view", scan)):
        print(f"{name:<8} {1 / seconds:>9.0f} {seconds * 1000:>9.3f}")
    print(f"view / rls  = {view / rls:.1f}x the time per transaction ({args.callers} subscribed callers)")
    print(f"view / none = {view / none:.1f}x")
    print(f"scan view / rls = {scan / rls:.0f}x (every caller's view runs again on every change)")


if __name__ == "__main__":
    main()
