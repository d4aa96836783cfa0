"""Incremental subscription evaluation vs. naive re-evaluation.

Run: .venv/bin/python bench/subscription.py [--sizes 10000,100000,1000000] [--txs 10000] [--quick]

Per table size: a `player` table of N rows and a `team` table of N/100 rows; 1,000 clients each subscribed to
a distinct single row (`SELECT * FROM player WHERE id = k`) and 100 clients on 10 distinct joins
(`SELECT player.* FROM player JOIN team ON player.team = team.id WHERE team.id = t`, 100 rows each: there
are N/100 teams, so results keep their size while the tables grow).
Then a stream of transactions, each updating 3 players (one of them subscribed) and every 10th also
inserting one player, deleting one, and renaming a subscribed team. Each transaction is committed the way the
host does it (manager lock, commit with downgrade, evaluate on the post-commit view).

Prints, per size: transactions/s of commit + evaluate, the evaluation time per transaction (mean, p50, p99:
how long the post-commit read lock is held), and the cost of naive re-evaluation (re-running every distinct
subscribed query with its index-using plan, encoding rows, diffing against the previous result) measured on a
sample of the same transactions, with the ratio naive / incremental.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections import Counter

from spacetimedb import sql
from spacetimedb.datastore import Datastore, IndexDef, TableDef
from spacetimedb.sats import STRING, U8, U32, U64, Identity, codec
from spacetimedb.subscription import SubscriptionManager

OWNER = Identity(0xAA)
CLIENT = Identity(1)
PLAYERS_PER_TEAM = 100  # join results have the same size whatever the table size
SINGLE_ROW_CLIENTS = 1000
JOIN_CLIENTS = 100
JOIN_QUERIES = 10


def teams_for(rows: int) -> int:
    return max(JOIN_QUERIES, rows // PLAYERS_PER_TEAM)


def build(rows: int) -> tuple[Datastore, int, int]:
    teams = teams_for(rows)
    ds = Datastore()
    tx = ds.begin_mut_tx()
    player = tx.create_table(
        TableDef(
            "player",
            [("id", U64), ("name", STRING), ("team", U32), ("score", U64)],
            indexes=[IndexDef((0,)), IndexDef((2,))],
            unique_constraints=[((0,), None)],
            primary_key=0,
        )
    )
    team = tx.create_table(
        TableDef(
            "team",
            [("id", U32), ("name", STRING), ("region", U8)],
            indexes=[IndexDef((0,))],
            unique_constraints=[((0,), None)],
            primary_key=0,
        )
    )
    for t in range(teams):
        tx.insert(team.table_id, (t, f"team{t}", t % 8))
    insert = tx.insert
    pid = player.table_id
    for i in range(rows):
        insert(pid, (i, f"player{i}", i % teams, 0))
    ds.commit(tx)
    return ds, pid, team.table_id


def subscribe_all(
    ds: Datastore, manager: SubscriptionManager, rng: random.Random, rows: int
) -> tuple[list[int], list[str]]:
    single_ids = rng.sample(range(rows), SINGLE_ROW_CLIENTS)
    queries = []
    with ds.begin_tx() as tx:
        for client, pid in enumerate(single_ids):
            text = f"SELECT * FROM player WHERE id = {pid}"
            manager.subscribe(client, 0, [text], CLIENT, False, tx)
            queries.append(text)
        for j in range(JOIN_CLIENTS):
            text = (
                "SELECT player.* FROM player JOIN team ON player.team = team.id "
                f"WHERE team.id = {j % JOIN_QUERIES}"
            )
            manager.subscribe(SINGLE_ROW_CLIENTS + j, 0, [text], CLIENT, False, tx)
            if j < JOIN_QUERIES:
                queries.append(text)
    return single_ids, queries


def make_transaction(rng: random.Random, step: int, single_ids: list[int], rows: int, next_id: list[int]):
    single_ids_set = set(single_ids)
    teams = teams_for(rows)
    hot = rng.choice(single_ids)
    joined = rng.randrange(JOIN_QUERIES) + teams * rng.randrange(max(1, rows // teams))
    targets = [hot, joined % rows, rng.randrange(rows)]

    def body(tx, pid: int, tid: int) -> None:
        pk = tx.schema(pid).indexes[0].index_id
        for target in targets:
            row = tx.find(pid, pk, target)
            if row is not None:
                tx.update(pid, pk, (row[0], row[1], row[2], row[3] + 1))
        if step % 10 == 0:
            tx.insert(pid, (next_id[0], f"new{next_id[0]}", rng.randrange(teams), 0))
            next_id[0] += 1
            victim = tx.find(pid, pk, rng.randrange(rows))
            if victim is not None and victim[0] not in single_ids_set:
                tx.delete(pid, victim)
            team_pk = tx.schema(tid).indexes[0].index_id
            t = rng.randrange(JOIN_QUERIES)
            tx.update(tid, team_pk, (t, f"team{t}-{step}", t % 8))

    return body


def run_size(rows: int, txs: int, naive_sample: int, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    t0 = time.perf_counter()
    ds, pid, tid = build(rows)
    manager = SubscriptionManager()
    single_ids, queries = subscribe_all(ds, manager, rng, rows)
    setup = time.perf_counter() - t0

    with ds.begin_tx() as tx:
        plans = [sql.compile_subscription(q, tx, CLIENT, False) for q in queries]
        encode = codec(tx.schema(pid).row_type).encode
        previous = [Counter(encode(r) for r in sql.select_rows(p, tx)) for p in plans]

    next_id = [rows]
    eval_times: list[float] = []
    naive_times: list[float] = []
    naive_every = max(1, txs // naive_sample)
    deltas_sent = 0
    start = time.perf_counter()
    for step in range(txs):
        body = make_transaction(rng, step, single_ids, rows, next_id)
        tx = ds.begin_mut_tx()
        body(tx, pid, tid)
        with manager.lock:
            data = tx.prepare_commit()
            view = tx.finish_commit(read_view=True)
            t = time.perf_counter()
            result = manager.evaluate(data, view)
            eval_times.append(time.perf_counter() - t)
            view.release()
        deltas_sent += sum(len(u) for u in result.updates.values())
        if step % naive_every == 0:
            with ds.begin_tx() as rtx:
                t = time.perf_counter()
                changed = 0
                for i, plan in enumerate(plans):
                    now = Counter(encode(r) for r in sql.select_rows(plan, rtx))
                    if now != previous[i]:
                        changed += 1
                        _ = (now - previous[i], previous[i] - now)  # the delta a naive server would send
                    previous[i] = now
                naive_times.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - start
    eval_us = [e * 1e6 for e in eval_times]
    mean_eval = statistics.fmean(eval_us)
    mean_naive = statistics.fmean(naive_times) * 1e6
    return {
        "rows": rows,
        "setup_s": setup,
        "tx_per_s": txs / elapsed,
        "eval_mean_us": mean_eval,
        "eval_p50_us": statistics.median(eval_us),
        "eval_p99_us": sorted(eval_us)[int(len(eval_us) * 0.99) - 1],
        "naive_us": mean_naive,
        "ratio": mean_naive / mean_eval,
        "queries": manager.query_count,
        "updates_per_tx": deltas_sent / txs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated player table sizes")
    parser.add_argument("--txs", type=int, default=10_000, help="transactions per size")
    parser.add_argument("--naive-sample", type=int, default=100, help="transactions re-evaluated naively")
    parser.add_argument("--quick", action="store_true", help="sizes 10k,100k and 1,000 transactions")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    txs = args.txs
    if args.quick:
        sizes, txs = [10_000, 100_000], 1_000
    print(
        f"{SINGLE_ROW_CLIENTS} single-row clients + {JOIN_CLIENTS} join clients ({JOIN_QUERIES} distinct joins), "
        f"{txs} transactions of ~3 row updates (every 10th: +insert, +delete, +team rename)"
    )
    header = (
        f"{'rows':>9} {'setup s':>8} {'tx/s':>8} {'eval mean':>10} {'p50':>8} {'p99':>8} "
        f"{'naive':>10} {'ratio':>7} {'queries':>8} {'msgs/tx':>8}"
    )
    print(header)
    results = []
    for rows in sizes:
        r = run_size(rows, txs, args.naive_sample, args.seed)
        results.append(r)
        print(
            f"{r['rows']:>9} {r['setup_s']:>8.1f} {r['tx_per_s']:>8.0f} {r['eval_mean_us']:>8.1f}us "
            f"{r['eval_p50_us']:>6.1f}us {r['eval_p99_us']:>6.1f}us {r['naive_us']:>8.0f}us {r['ratio']:>6.0f}x "
            f"{r['queries']:>8} {r['updates_per_tx']:>8.2f}"
        )
    if len(results) > 1:
        growth = results[-1]["eval_mean_us"] / results[0]["eval_mean_us"]
        print(
            f"evaluation cost per transaction, {results[-1]['rows']} vs {results[0]['rows']} rows: x{growth:.2f} "
            f"(table grew x{results[-1]['rows'] / results[0]['rows']:.0f})"
        )


if __name__ == "__main__":
    main()
