"""SQL one-off query costs: parse + plan time of typical queries, and point-lookup latency vs sqlite3.

Run: .venv/bin/python bench/sql.py [--rows N] [--lookups N] [--skip-pgwire]

Prints, for typical one-off queries, the time to parse (cache bypassed), to compile a parsed statement into a
typed and physical plan (names, types, access paths, join order, predicate code), and both together; then the latency of a point lookup by primary key through the whole one-off
path (parse via cache + compile + execute in a read transaction) and, as the floor, executing a precompiled
plan, next to Python's sqlite3 on the same rows (in memory, same indexes), with the ratios.

Last, the PostgreSQL wire protocol: the same point lookups through asyncpg (a prepared ``$1`` statement) against
our server (``--pg-port``, a published module holding the rows) and against PostgreSQL (a temporary cluster
started as bench/keynote.py starts it, same table and primary key), from one connection (latency) and from 16 at
once (throughput), with the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from spacetimedb import sql
from spacetimedb.datastore import Datastore, IndexDef, SequenceDef, TableDef
from spacetimedb.sats import STRING, U8, U32, U64, Identity
from spacetimedb.sql.parser import parse_uncached

OWNER = Identity(0xAA)

TYPICAL = [
    "SELECT * FROM person WHERE id = 42",
    'SELECT * FROM "person" WHERE "person"."name" = \'person42\'',
    "SELECT name, age FROM person WHERE age > 30 AND age < 40 ORDER BY name LIMIT 10",
    "SELECT COUNT(*) AS n FROM person WHERE age = 25",
    "SELECT p.* FROM person AS p JOIN pet ON p.id = pet.owner WHERE pet.kind = 'cat' AND p.age >= 18",
    "INSERT INTO person (name, age) VALUES ('zed', 33)",
    "UPDATE person SET age = 31 WHERE id = 42",
]


def build(rows: int) -> tuple[Datastore, sqlite3.Connection]:
    ds = Datastore()
    tx = ds.begin_mut_tx()
    person = tx.create_table(
        TableDef(
            "person",
            [("id", U64), ("name", STRING), ("age", U8)],
            indexes=[IndexDef((0,)), IndexDef((1,)), IndexDef((2,))],
            unique_constraints=[((0,), None), ((1,), None)],
            sequences=[SequenceDef(0)],
            primary_key=0,
        )
    )
    pet = tx.create_table(
        TableDef("pet", [("owner", U64), ("kind", STRING), ("weight", U32)], indexes=[IndexDef((0,))])
    )
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE person (id INTEGER PRIMARY KEY, name TEXT UNIQUE, age INTEGER)")
    conn.execute("CREATE INDEX person_age ON person (age)")
    people = [(i, f"person{i}", 18 + i % 60) for i in range(1, rows + 1)]
    for row in people:
        tx.insert(person.table_id, row)
    for i in range(1, rows + 1, 3):
        tx.insert(pet.table_id, (i, "cat" if i % 2 else "dog", i % 20))
    ds.commit(tx)
    conn.executemany("INSERT INTO person VALUES (?, ?, ?)", people)
    conn.commit()
    return ds, conn


def per_call_us(fn: Callable[[], object], n: int) -> float:
    for _ in range(min(n, 200)):
        fn()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - start) / n)
    return best * 1e6


def physical(plan: sql.Plan) -> sql.Plan:
    """Build the physical plans too (access paths, join order, predicate code), which execute does lazily."""
    fragments = plan.fragments if isinstance(plan, sql.SelectPlan) else [getattr(plan, "fragment", None)]
    for fragment in fragments:
        if fragment is not None:
            _ = fragment.plan
    return plan


def bench_compile(ds: Datastore, n: int) -> None:
    print(f"{'query':<100} {'parse':>8} {'plan':>8} {'total':>8}")
    with ds.begin_tx() as tx:
        for text in TYPICAL:
            statement = sql.parse(text)
            parse = per_call_us(lambda text=text: parse_uncached(text), n)
            plan = per_call_us(
                lambda statement=statement: physical(sql.compile(statement, tx, OWNER, True)), n
            )
            print(f"{text:<100} {parse:>6.1f}us {plan:>6.1f}us {parse + plan:>6.1f}us")


def bench_lookup(ds: Datastore, conn: sqlite3.Connection, rows: int, n: int) -> None:
    rng = random.Random(1)
    keys = [rng.randrange(1, rows + 1) for _ in range(1024)]
    counter = iter(range(10**12))

    def ours_full() -> object:
        key = keys[next(counter) & 255]  # 256 distinct texts: all fit the parse cache
        with ds.begin_tx() as tx:
            return sql.execute(
                sql.compile(f"SELECT * FROM person WHERE id = {key}", tx, OWNER, True), tx
            ).rows

    def ours_cold() -> object:
        key = keys[next(counter) & 1023]
        text = f"SELECT * FROM person WHERE id = {key}"
        with ds.begin_tx() as tx:
            return sql.execute(sql.compile(parse_uncached(text)[0], tx, OWNER, True), tx).rows

    with ds.begin_tx() as tx:
        plan = sql.compile("SELECT * FROM person WHERE id = 42", tx, OWNER, True)

    def ours_plan() -> object:
        with ds.begin_tx() as tx:
            return sql.execute(plan, tx).rows

    def sqlite_text() -> object:
        key = keys[next(counter) & 1023]
        return conn.execute(f"SELECT * FROM person WHERE id = {key}").fetchall()

    def sqlite_param() -> object:
        key = keys[next(counter) & 1023]
        return conn.execute("SELECT * FROM person WHERE id = ?", (key,)).fetchall()

    assert ours_full() and sqlite_text()
    results = {
        "ours: parse + compile + execute": per_call_us(ours_cold, n),
        "ours: same, text seen before (parse cache)": per_call_us(ours_full, n),
        "ours: execute a compiled plan": per_call_us(ours_plan, n),
        "sqlite3: SQL text with the literal": per_call_us(sqlite_text, n),
        "sqlite3: prepared, ? parameter": per_call_us(sqlite_param, n),
    }
    print()
    print(f"point lookup by primary key, {rows} rows")
    for name, us in results.items():
        print(f"  {name:<44} {us:>7.1f}us")
    full = results["ours: parse + compile + execute"]
    print(
        f"  ratio ours (one-off path) / sqlite3 (text):  {full / results['sqlite3: SQL text with the literal']:.1f}x"
    )
    print(
        f"  ratio ours (one-off path) / sqlite3 (param): {full / results['sqlite3: prepared, ? parameter']:.1f}x"
    )
    print(
        f"  ratio ours (compiled plan) / sqlite3 (param): {results['ours: execute a compiled plan'] / results['sqlite3: prepared, ? parameter']:.1f}x"
    )


PERSON_MODULE = b"""
from typing import Annotated
from spacetimedb import table, reducer, ReducerContext, PrimaryKey, Unique, u8, u64

@table(public=True)
class Person:
    id: Annotated[u64, PrimaryKey]
    name: Annotated[str, Unique]
    age: u8

@reducer
def fill(ctx: ReducerContext, start: u64, count: u64) -> None:
    for i in range(start, start + count):
        ctx.db.person.insert(Person(id=i, name=f"person{i}", age=18 + i % 60))
"""
LOOKUP = "SELECT * FROM person WHERE id = $1"
CONNECTIONS = 16


async def lookups_through_asyncpg(connect: Callable[[], Awaitable], ids: list[int]) -> tuple[float, float]:
    """(microseconds per lookup from one connection, lookups per second from CONNECTIONS at once)."""
    conn = await connect()
    lookup = await conn.prepare(LOOKUP)
    for i in ids[:200]:  # warm up
        await lookup.fetchrow(i)
    started = time.perf_counter()
    for i in ids:
        row = await lookup.fetchrow(i)
        assert row is not None
    latency = (time.perf_counter() - started) / len(ids) * 1e6
    await conn.close()
    conns = [await connect() for _ in range(CONNECTIONS)]

    async def worker(conn, share: list[int]) -> None:
        statement = await conn.prepare(LOOKUP)
        for i in share:
            await statement.fetchrow(i)

    started = time.perf_counter()
    await asyncio.gather(*(worker(c, ids[k::CONNECTIONS]) for k, c in enumerate(conns)))
    throughput = len(ids) / (time.perf_counter() - started)
    for c in conns:
        await c.close()
    return latency, throughput


def start_ours_with_pg(rows: int) -> tuple[subprocess.Popen[bytes], int, str]:
    """Our server (in memory, --pg-port) with PERSON_MODULE published and filled: (process, pg port, token)."""
    from keynote_systems import ROOT, http, start_group, stop_group

    command = [sys.executable, "-m", "spacetimedb.server", "--listen-addr", "127.0.0.1:0", "--in-memory"]
    process = start_group([*command, "--pg-port", "0"], stdout=subprocess.PIPE, cwd=ROOT)
    try:
        return (process, *_publish_and_fill(process, rows, http))
    except BaseException:
        stop_group(process)
        raise


def _publish_and_fill(process: subprocess.Popen[bytes], rows: int, http: Callable) -> tuple[int, str]:
    pg_port, base = None, None
    assert process.stdout is not None
    for _ in range(20):  # the server prints a few lines, "postgres on" before "listening on"
        line = process.stdout.readline().decode()
        if line.startswith("postgres on "):
            pg_port = int(line.split()[-1].rsplit(":", 1)[1])
        if line.startswith("listening on "):
            base = line.split()[-1]
            break
    if pg_port is None or base is None:
        raise RuntimeError("our server did not say where it listens")
    token = json.loads(http("POST", f"{base}/v1/identity"))["token"]
    auth = {"Authorization": f"Bearer {token}"}
    http("PUT", f"{base}/v1/database/lookups", PERSON_MODULE, auth)
    for start in range(1, rows + 1, 10_000):
        body = json.dumps([start, min(10_000, rows + 1 - start)]).encode()
        http(
            "POST",
            f"{base}/v1/database/lookups/call/fill",
            body,
            {**auth, "Content-Type": "application/json"},
        )
    return pg_port, token


async def fill_postgres(dsn: str, rows: int) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    await conn.execute("CREATE TABLE person (id BIGINT PRIMARY KEY, name TEXT UNIQUE NOT NULL, age SMALLINT)")
    await conn.copy_records_to_table(
        "person", records=[(i, f"person{i}", 18 + i % 60) for i in range(1, rows + 1)]
    )
    await conn.execute("ANALYZE person")
    await conn.close()


def bench_pgwire(rows: int, n: int) -> None:
    import asyncpg

    from keynote_systems import PostgresCluster, stop_group

    print(
        f"\nPoint lookup by primary key through asyncpg ({rows:,} rows, {n:,} lookups, prepared `{LOOKUP}`):"
    )
    ids = [random.Random(7).randint(1, rows) for _ in range(n)]
    ours, port, token = start_ours_with_pg(rows)
    cluster = PostgresCluster()
    try:
        cluster.start()
        asyncio.run(fill_postgres(cluster.dsn, rows))

        def ours_connect() -> Awaitable:
            return asyncpg.connect(
                host="127.0.0.1", port=port, user="bench", database="lookups", password=token, ssl=False
            )

        mine = asyncio.run(lookups_through_asyncpg(ours_connect, ids))
        theirs = asyncio.run(lookups_through_asyncpg(lambda: asyncpg.connect(cluster.dsn), ids))
        print(f"  ({cluster.version()}, fsync on; ours --in-memory: reads touch no disk on either side)")
    finally:
        stop_group(ours)
        cluster.stop()
    print(f"  {'ours (--pg-port), 1 connection':<44} {mine[0]:>9.1f} us/lookup")
    print(f"  {'PostgreSQL, 1 connection':<44} {theirs[0]:>9.1f} us/lookup")
    print(f"  {f'ours (--pg-port), {CONNECTIONS} connections':<44} {mine[1]:>9.0f} lookups/s")
    print(f"  {f'PostgreSQL, {CONNECTIONS} connections':<44} {theirs[1]:>9.0f} lookups/s")
    print(f"  ratio ours / PostgreSQL latency: {mine[0] / theirs[0]:.2f}x")
    print(f"  ratio ours / PostgreSQL throughput: {mine[1] / theirs[1]:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=20_000, help="iterations per measurement")
    parser.add_argument(
        "--skip-pgwire", action="store_true", help="skip the asyncpg lookups (needs PostgreSQL)"
    )
    args = parser.parse_args()
    ds, conn = build(args.rows)
    bench_compile(ds, max(1000, args.lookups // 10))
    bench_lookup(ds, conn, args.rows, args.lookups)
    if not args.skip_pgwire:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        bench_pgwire(args.rows, args.lookups)


if __name__ == "__main__":
    main()
