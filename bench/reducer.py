"""Reducer calls through the module host of one database (as its worker process runs it), without any network: calls/s of an empty reducer and of the keynote
``transfer`` reducer (two primary-key finds and two updates, one durable transaction each).

Run: .venv/bin/python bench/reducer.py [--calls N] [--accounts N]
Calls are submitted pipelined, as the server does, and counted when their reply arrives (the transaction is
committed and queued for the disk); the time until the last one is durable is printed too. Targets on this
machine: >= 50k empty reducer calls/s, >= 25k transfers/s.
"""

from __future__ import annotations

import argparse
import random
import struct
import tempfile
import threading
import time
from pathlib import Path

from spacetimedb.host.database import Database
from spacetimedb.sats import Identity
from spacetimedb.server.app import tune_gc

ROOT = Path(__file__).resolve().parents[1]
KEYNOTE = (ROOT / "examples" / "keynote" / "keynote_module.py").read_bytes()
DB = Identity(0xC2 << 248 | 0xBE)
OWNER = Identity(0xC2 << 248 | 0x01)


def run(host, reducer: str, payloads: list[bytes]) -> tuple[float, float, int]:
    """(seconds until every reply, seconds until durable, failures)."""
    done = threading.Event()
    state = {"left": len(payloads), "failed": 0, "offset": -1}

    def reply(outcome) -> None:
        if not outcome.ok:
            state["failed"] += 1
        elif outcome.offset is not None and outcome.offset > state["offset"]:
            state["offset"] = outcome.offset
        state["left"] -= 1
        if state["left"] == 0:
            done.set()

    start = time.perf_counter()
    for args in payloads:
        host.call_reducer(reducer, args, sender=OWNER, reply=reply)
    done.wait()
    replied = time.perf_counter() - start
    if state["offset"] >= 0:
        host.db.wait_durable(state["offset"], 60)
    return replied, time.perf_counter() - start, state["failed"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--accounts", type=int, default=100_000)
    args = parser.parse_args()
    tune_gc()  # as the server process does
    with tempfile.TemporaryDirectory() as tmp:
        database = Database.create(Path(tmp) / "keynote", DB, OWNER, KEYNOTE)
        try:
            host = database.host
            seed = host.call_reducer_sync(
                "seed", [args.accounts, 1_000_000_000], sender=OWNER, json_args=True
            )
            assert seed.ok, seed.message
            rng = random.Random(42)
            transfers = []
            for _ in range(args.calls):
                a, b = rng.sample(range(args.accounts), 2)
                transfers.append(struct.pack("<IIq", a, b, 1))
            empty = [b""] * args.calls
            run(host, "noop", empty[: args.calls // 10])  # warm-up
            print(
                f"{'reducer':12} {'calls':>9} {'calls/s (replied)':>18} {'calls/s (durable)':>18} {'failed':>7}"
            )
            for name, payloads in (("noop", empty), ("transfer", transfers)):
                replied, durable, failed = run(host, name, payloads)
                print(
                    f"{name:12} {len(payloads):9,} {len(payloads) / replied:18,.0f} {len(payloads) / durable:18,.0f} {failed:7}"
                )
            with host.db.read_tx() as tx:
                total = sum(row[1] for row in tx.scan(tx.table_id("accounts")))
            print(f"total balance {total:,} (expected {args.accounts * 1_000_000_000:,})")
        finally:
            database.shutdown()


if __name__ == "__main__":
    main()
