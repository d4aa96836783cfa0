"""The peers of the keynote benchmark: the same bank as examples/keynote, as a typical Python web stack.

    python bench/keynote_peer.py --backend postgres --dsn postgresql://... --fd FD [--workers N]
    python bench/keynote_peer.py --backend sqlite --sqlite-path FILE --fd FD

Starlette on uvicorn (uvloop + httptools), serving on an already bound listening socket (``--fd``, so the
caller knows the port before the server starts):
  POST /transfer  {"from_id": a, "to_id": b, "amount": n}  -> 200 {"ok": true} | 409 {"error": reason}
  POST /seed      [n, initial_balance]                     -> replace all accounts
  GET  /total                                              -> {"count", "sum", "retries"}

Each transfer applies the keynote module's rules (same account, amount <= 0, missing account, insufficient
funds) in one serializable transaction:
  postgres  asyncpg pool of 64; the server runs with default_transaction_isolation = serializable;
            SELECT ... FOR UPDATE of both rows ordered by id, two UPDATEs, COMMIT; a serialization failure
            (or deadlock) is retried immediately.
  sqlite    sqlite3 in WAL mode with synchronous=FULL, BEGIN IMMEDIATE (SQLite's serializable writer), on one
            connection used from the event loop (SQLite runs one writer at a time; see SqliteBank).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

MAX_ATTEMPTS = 1000  # serialization retries before a transfer is reported as failed (503)
CONFIG_ENV = "KEYNOTE_PEER_CONFIG"  # worker processes read their configuration from here


class Refused(Exception):
    """A transfer refused by the business rules (the module's reducer raises for the same cases)."""


class Bank(Protocol):
    retries: int

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def seed(self, count: int, balance: int) -> None: ...
    async def transfer(self, from_id: int, to_id: int, amount: int) -> None: ...
    async def total(self) -> tuple[int, int]: ...


def check_arguments(from_id: int, to_id: int, amount: int) -> None:
    if from_id == to_id:
        raise Refused("same_account")
    if amount <= 0:
        raise Refused("invalid_amount")


# ---- PostgreSQL through asyncpg --------------------------------------------------------------------------------

PG_CREATE = "CREATE TABLE IF NOT EXISTS accounts (id integer PRIMARY KEY, balance bigint NOT NULL)"
PG_LOCK = "SELECT id, balance FROM accounts WHERE id = ANY($1::integer[]) ORDER BY id FOR UPDATE"
PG_ADD = "UPDATE accounts SET balance = balance + $1 WHERE id = $2"


class PostgresBank:
    def __init__(self, dsn: str, pool_size: int) -> None:
        self.dsn = dsn
        self.pool_size = pool_size
        self.pool: Any = None
        self.retries = 0

    async def open(self) -> None:
        import asyncpg

        self.pool = await asyncpg.create_pool(self.dsn, min_size=self.pool_size, max_size=self.pool_size)
        isolation = await self.pool.fetchval("SHOW default_transaction_isolation")
        if isolation != "serializable":
            raise RuntimeError(f"PostgreSQL runs with default_transaction_isolation = {isolation}")
        await self.pool.execute(PG_CREATE)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    async def seed(self, count: int, balance: int) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute("TRUNCATE accounts")
            await conn.execute(
                "INSERT INTO accounts SELECT g, $1 FROM generate_series(0, $2 - 1) AS g", balance, count
            )
            await conn.execute("VACUUM ANALYZE accounts")  # a fresh table for every case, with statistics
            await conn.execute("CHECKPOINT")  # so that no case pays for the previous one's dirty pages

    async def transfer(self, from_id: int, to_id: int, amount: int) -> None:
        import asyncpg

        check_arguments(from_id, to_id, amount)
        ids = [from_id, to_id] if from_id < to_id else [to_id, from_id]
        async with self.pool.acquire() as conn:
            for _ in range(MAX_ATTEMPTS):
                try:
                    async with conn.transaction():  # BEGIN: serializable, the server's default
                        rows = await conn.fetch(PG_LOCK, ids)
                        if len(rows) != 2:
                            raise Refused("account_not_found")
                        source = rows[0] if rows[0][0] == from_id else rows[1]
                        if source[1] < amount:
                            raise Refused("insufficient_funds")
                        await conn.execute(PG_ADD, -amount, from_id)
                        await conn.execute(PG_ADD, amount, to_id)
                    return
                except (asyncpg.SerializationError, asyncpg.DeadlockDetectedError):
                    self.retries += 1
        raise RuntimeError(f"transfer {from_id}->{to_id} still conflicting after {MAX_ATTEMPTS} attempts")

    async def total(self) -> tuple[int, int]:
        row = await self.pool.fetchrow("SELECT count(*), coalesce(sum(balance), 0) FROM accounts")
        return int(row[0]), int(row[1])


# ---- SQLite through sqlite3 ------------------------------------------------------------

SQLITE_CREATE = "CREATE TABLE IF NOT EXISTS accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)"
SQLITE_LOCK = "SELECT id, balance FROM accounts WHERE id IN (?, ?) ORDER BY id"
SQLITE_ADD = "UPDATE accounts SET balance = balance + ? WHERE id = ?"


class SqliteBank:
    """One connection, used on the event loop thread itself: SQLite runs one writer at a time anyway, and
    handing each transaction to a writer thread measured ~40% slower here (the two threads ping-pong the GIL
    around every sqlite3 call); a commit's fsync blocks the loop, which is the price of this stack."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.retries = 0  # a single writer never conflicts
        self.conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise RuntimeError(f"SQLite refused WAL mode (got {mode})")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(SQLITE_CREATE)
        self.conn = conn

    async def close(self) -> None:
        if self.conn is not None:
            self.conn.close()

    async def seed(self, count: int, balance: int) -> None:
        conn = self.conn
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DELETE FROM accounts")
        conn.executemany("INSERT INTO accounts VALUES (?, ?)", ((i, balance) for i in range(count)))
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    async def transfer(self, from_id: int, to_id: int, amount: int) -> None:
        check_arguments(from_id, to_id, amount)
        conn = self.conn
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        try:
            rows = conn.execute(SQLITE_LOCK, (from_id, to_id)).fetchall()
            if len(rows) != 2:
                raise Refused("account_not_found")
            source = rows[0] if rows[0][0] == from_id else rows[1]
            if source[1] < amount:
                raise Refused("insufficient_funds")
            conn.execute(SQLITE_ADD, (-amount, from_id))
            conn.execute(SQLITE_ADD, (amount, to_id))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    async def total(self) -> tuple[int, int]:
        assert self.conn is not None
        count, total = self.conn.execute(
            "SELECT count(*), coalesce(sum(balance), 0) FROM accounts"
        ).fetchone()
        return int(count), int(total)


# ---- the web app ----------------------------------------------------------------------------------------------


def make_bank(config: dict[str, Any]) -> Bank:
    if config["backend"] == "postgres":
        return PostgresBank(config["dsn"], config["pool_size"])
    return SqliteBank(config["sqlite_path"])


def create_app() -> Starlette:
    """The app, configured from the environment (uvicorn calls this in every worker process)."""
    bank = make_bank(json.loads(os.environ[CONFIG_ENV]))

    async def transfer(request: Request) -> JSONResponse:
        try:
            body = await request.json()
            from_id, to_id, amount = int(body["from_id"]), int(body["to_id"]), int(body["amount"])
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": f"bad request: {exc}"}, status_code=400)
        try:
            await bank.transfer(from_id, to_id, amount)
        except Refused as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        return JSONResponse({"ok": True})

    async def seed(request: Request) -> JSONResponse:
        count, balance = await request.json()
        await bank.seed(int(count), int(balance))
        return JSONResponse({"ok": True})

    async def total(request: Request) -> JSONResponse:
        count, balance_sum = await bank.total()
        return JSONResponse({"count": count, "sum": balance_sum, "retries": bank.retries})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await bank.open()
        try:
            yield
        finally:
            await bank.close()

    return Starlette(
        routes=[
            Route("/transfer", transfer, methods=["POST"]),
            Route("/seed", seed, methods=["POST"]),
            Route("/total", total, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["postgres", "sqlite"], required=True)
    parser.add_argument("--dsn", default="")
    parser.add_argument("--pool-size", type=int, default=64)
    parser.add_argument("--sqlite-path", default="")
    parser.add_argument("--fd", type=int, required=True, help="an inherited, listening TCP socket")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    os.environ[CONFIG_ENV] = json.dumps(
        {
            "backend": args.backend,
            "dsn": args.dsn,
            "pool_size": args.pool_size,
            "sqlite_path": args.sqlite_path,
        }
    )
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # workers import this file by name

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        "keynote_peer:create_app",
        factory=True,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
    )
    # Not `uvicorn.run(fd=...)`: uvicorn takes an inherited fd for a UNIX socket (socket.fromfd(fd, AF_UNIX)),
    # so the loop would not set TCP_NODELAY on its connections, and every response written in two parts would
    # wait ~40 ms for the client's delayed ACK. socket.socket(fileno=...) asks the fd for its real family.
    listener = socket.socket(fileno=args.fd)
    if args.workers > 1:
        Multiprocess(config, sockets=[listener]).run()
    else:
        uvicorn.Server(config).run(sockets=[listener])


if __name__ == "__main__":
    main()
