"""Reducer calls through the module host of one database (as its worker process runs it), without any network: calls/s of an empty reducer and of the keynote
``transfer`` reducer (two primary-key finds and two updates, one durable transaction each), beside the floor.

Run: .venv/bin/python bench/reducer.py [--calls N] [--accounts N] [--rounds N] [--foreign-calls N]
Calls are submitted pipelined, as the server does, and counted when their reply arrives (the transaction is
committed and queued for the disk); the time until the last one is durable is printed too. The harness runs no
Python of its own per reply (each outcome is dropped at once, as a server drops it once sent; failures come from
the host's metrics), so what is measured is the host's work. The calls run in
interleaved rounds (empty, transfer, floor; again); each row is its best round.

The floor is the same transfer done by plain Python in the same run: the arguments decoded and the rows encoded
by the project's own codecs, the accounts a dict of tuples, and the commit record (the reducer's inputs, the two
old rows deleted and the two new ones inserted) encoded by the project's own commitlog encoder. No lock, no
transaction, no module code, no disk. The ratio is host time per transfer over floor time per transfer; it is
printed by wall time and by CPU time (of the whole process: every thread the host uses), which a busy machine
disturbs less. The CPU time of the host thread alone is printed beside it: the rest is the submitting thread,
the durability thread and their hand-offs (all under one GIL, so moving work between threads saves nothing).
Targets (issue 21): ratio <= 4 for ``transfer``, >= 200k empty reducer calls/s.
"""

from __future__ import annotations

import argparse
import collections
import random
import statistics
import struct
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from spacetimedb import native
from spacetimedb.commitlog import TxInputs, encode_commit_record
from spacetimedb.host.database import Database
from spacetimedb.host.module_host import ModuleHost
from spacetimedb.sats import Identity, codec
from spacetimedb.server.app import tune_gc

ROOT = Path(__file__).resolve().parents[1]
KEYNOTE = (ROOT / "examples" / "keynote" / "keynote_module.py").read_bytes()
DB = Identity(0xC2 << 248 | 0xBE)
OWNER = Identity(0xC2 << 248 | 0x01)
INITIAL_BALANCE = 1_000_000_000
TARGET_RATIO = 4.0
TARGET_EMPTY_CALLS = 200_000
T = TypeVar("T")


@dataclass
class Row:
    """One printed line: a reducer driven through a host."""

    name: str
    calls: int
    replied_seconds: float
    durable_seconds: float
    failed: int
    cpu_seconds: float  # of the whole process (every thread), until every reply
    host_cpu_seconds: float  # of the host thread alone, for the calls

    @property
    def micros_per_call(self) -> float:
        return self.replied_seconds * 1e6 / self.calls

    @property
    def cpu_micros_per_call(self) -> float:
        return self.cpu_seconds * 1e6 / self.calls

    @property
    def host_cpu_micros_per_call(self) -> float:
        return self.host_cpu_seconds * 1e6 / self.calls


def host_thread_time(host: ModuleHost) -> float:
    """``time.thread_time()`` of the host thread."""
    return on_host_thread(host, time.thread_time)


def on_host_thread(host: ModuleHost, read: Callable[[], T]) -> T:
    """``read()`` on the host thread, by a job queued behind everything before it."""
    result: Future[T] = Future()
    host.submit(lambda: result.set_result(read()))
    return result.result()


def failures(host: ModuleHost, reducer: str) -> int:
    """The failed calls of ``reducer`` so far, as the host's metrics count them."""
    report = on_host_thread(host, host.reducer_metrics.report)
    return sum(metrics.failures for metrics in report if metrics.reducer == reducer)


def run(host: ModuleHost, reducer: str, payloads: list[bytes]) -> tuple[float, float, int, float]:
    """(seconds until every reply, seconds until durable, failures, CPU seconds of the process until every
    reply). A reply's outcome is dropped at once, as a server drops it once sent (the replies come in call
    order, so the last one ends the run); failures are counted by the host's metrics. The harness adds no
    Python of its own per call beyond the call itself."""
    done = threading.Event()
    # C code: frees the outcome on the host thread at once, as a server does
    drop: Callable[[object], None] = collections.deque(maxlen=0).append
    failed_before = failures(host, reducer)
    start, cpu_start = time.perf_counter(), time.process_time()
    for args in payloads[:-1]:
        host.call_reducer(reducer, args, sender=OWNER, reply=drop)
    host.call_reducer(reducer, payloads[-1], sender=OWNER, reply=lambda _: done.set())
    done.wait()
    replied, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    host.db.wait_durable(host.db.next_offset - 1, 60)
    return replied, time.perf_counter() - start, failures(host, reducer) - failed_before, cpu


def measure(host: ModuleHost, name: str, payloads: list[bytes]) -> Row:
    host_start = host_thread_time(host)
    replied, durable, failed, cpu = run(host, name, payloads)
    # (the host thread is idle while ``run`` waits for the fsync)
    host_cpu = host_thread_time(host) - host_start
    return Row(name, len(payloads), replied, durable, failed, cpu, host_cpu)


class _TableChanges:
    """What ``encode_commit_record`` reads of one changed table."""

    __slots__ = ("delete_bytes", "insert_bytes", "table_id")

    def __init__(self, table_id: int, insert_bytes: list[bytes], delete_bytes: list[bytes]) -> None:
        self.table_id = table_id
        self.insert_bytes = insert_bytes
        self.delete_bytes = delete_bytes


def floor_transfers(host: ModuleHost, accounts: int, payloads: list[bytes]) -> Row:
    """Plain Python doing ``payloads``' transfers (see the module docstring), on a fresh copy of the accounts.
    The codecs are the module's own: the reducer's parameters and the table's rows."""
    runtime = host.runtime
    call = runtime.reducer_call("transfer")
    decode_args = call.decode_bsatn
    table_id = runtime.table_id("accounts")
    with host.db.read_tx() as tx:
        encode_row = codec(tx.schema(table_id).row_type).encode
    balances: dict[int, tuple[int, int]] = {i: (i, INITIAL_BALANCE) for i in range(accounts)}
    identity, connection = OWNER.to_le_bytes(), bytes(16)
    log: list[bytes] = []
    append = log.append
    start, cpu_start = time.perf_counter(), time.process_time()
    for args in payloads:
        from_id, to_id, amount = decode_args(args)
        source, target = balances[from_id], balances[to_id]
        if source[1] < amount:
            raise ValueError("insufficient_funds")
        new_source, new_target = (from_id, source[1] - amount), (to_id, target[1] + amount)
        balances[from_id], balances[to_id] = new_source, new_target
        changes = _TableChanges(
            table_id,
            [encode_row(new_source), encode_row(new_target)],
            [encode_row(source), encode_row(target)],
        )
        append(encode_commit_record(TxInputs("transfer", identity, connection, 0, args), (changes,)))
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return Row("floor", len(payloads), wall, wall, 0, cpu, cpu)


def best_of(rounds: list[Row]) -> Row:
    """The fastest round by each measure (wall time and CPU time separately), with every round's failures."""
    return Row(
        rounds[0].name,
        rounds[0].calls,
        min(r.replied_seconds for r in rounds),
        min(r.durable_seconds for r in rounds),
        sum(r.failed for r in rounds),
        min(r.cpu_seconds for r in rounds),
        min(r.host_cpu_seconds for r in rounds),
    )


def print_rows(rows: list[Row]) -> None:
    print(f"hot path: {native.status()}")  # which one these figures measured
    print(
        f"{'reducer':12} {'calls':>9} {'calls/s (replied)':>18} {'calls/s (durable)':>18} "
        f"{'µs/call':>8} {'CPU µs/call':>12} {'host thread':>12} {'failed':>7}"
    )
    for row in rows:
        print(
            f"{row.name:12} {row.calls:9,} {row.calls / row.replied_seconds:18,.0f} "
            f"{row.calls / row.durable_seconds:18,.0f} {row.micros_per_call:8.2f} "
            f"{row.cpu_micros_per_call:12.2f} {row.host_cpu_micros_per_call:12.2f} {row.failed:7}"
        )


def print_targets(empty: Row, transfer: Row, floor: Row) -> None:
    wall_ratio = transfer.micros_per_call / floor.micros_per_call
    cpu_ratio = transfer.cpu_micros_per_call / floor.cpu_micros_per_call
    host_ratio = transfer.host_cpu_micros_per_call / floor.cpu_micros_per_call
    empty_rate = empty.calls / empty.replied_seconds
    print(
        f"transfer / floor: {wall_ratio:.2f} by wall time, {cpu_ratio:.2f} by CPU time, "
        f"{host_ratio:.2f} by the host thread's CPU time "
        f"(target <= {TARGET_RATIO:g}: {'met' if wall_ratio <= TARGET_RATIO else 'NOT met'})"
    )
    print(
        f"empty reducer: {empty_rate:,.0f} calls/s "
        f"(target >= {TARGET_EMPTY_CALLS:,}: {'met' if empty_rate >= TARGET_EMPTY_CALLS else 'NOT met'})"
    )


def keynote_rows(host: ModuleHost, args: argparse.Namespace) -> tuple[list[Row], list[float]]:
    """The empty reducer, ``transfer`` and the floor of the same transfers, each the best of ``args.rounds``
    interleaved rounds (on a shared machine the slower rounds measure its other users too); and each round's
    transfer/floor ratio by wall time, the two measured one right after the other."""
    rng = random.Random(42)
    per_round = args.calls // args.rounds
    empty = [b""] * per_round
    run(host, "noop", empty[: per_round // 10])  # warm-up
    rounds: dict[str, list[Row]] = {"noop": [], "transfer": [], "floor": []}
    for _ in range(args.rounds):
        transfers = []
        for _ in range(per_round):
            a, b = rng.sample(range(args.accounts), 2)
            transfers.append(struct.pack("<IIq", a, b, 1))
        rounds["noop"].append(measure(host, "noop", empty))
        rounds["transfer"].append(measure(host, "transfer", transfers))
        rounds["floor"].append(floor_transfers(host, args.accounts, transfers))
    paired = [
        transfer.replied_seconds / floor.replied_seconds
        for transfer, floor in zip(rounds["transfer"], rounds["floor"], strict=True)
    ]
    return [best_of(r) for r in rounds.values()], paired


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument(
        "--rounds", type=int, default=5, help="interleaved rounds of --calls / --rounds calls"
    )
    parser.add_argument(
        "--foreign-calls",
        type=int,
        default=10_000,
        help="calls per row of the foreign modules' table (bench/foreign.py); 0 leaves it out",
    )
    args = parser.parse_args()
    tune_gc()  # as the server process does
    with tempfile.TemporaryDirectory() as tmp:
        database = Database.create(Path(tmp) / "keynote", DB, OWNER, KEYNOTE)
        try:
            host = database.host
            seed = host.call_reducer_sync(
                "seed", [args.accounts, INITIAL_BALANCE], sender=OWNER, json_args=True
            )
            assert seed.ok, seed.message
            (empty_row, transfer_row, floor_row), paired = keynote_rows(host, args)
            with host.db.read_tx() as tx:
                total = sum(row[1] for row in tx.scan(tx.table_id("accounts")))
        finally:
            database.shutdown()
    print_rows([empty_row, transfer_row, floor_row])
    print_targets(empty_row, transfer_row, floor_row)
    # a busy machine slows rounds unevenly: the best rounds of each row may come from different moments
    print(
        f"transfer / floor per round, each pair measured back to back: median {statistics.median(paired):.2f} "
        f"({', '.join(f'{ratio:.2f}' for ratio in paired)})"
    )
    print(f"total balance {total:,} (expected {args.accounts * INITIAL_BALANCE:,})")
    if args.foreign_calls:
        print_foreign_rows(args.foreign_calls)


def print_foreign_rows(calls: int) -> None:
    """The keynote module built by SpacetimeDB's toolchains (WASM from Rust, a TypeScript bundle on V8) beside the
    Python one, each in a database of its own (issue 22): the per-call cost of ``noop`` and ``transfer``."""
    import foreign  # bench/foreign.py, beside this file

    print()
    print(foreign.HEADER)
    for row in foreign.foreign_rows(run, calls):
        print(row.text())


if __name__ == "__main__":
    main()
