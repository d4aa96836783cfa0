"""Commitlog and durability throughput, as the server would see it.

    .venv/bin/python bench/commitlog.py                  # everything, 1M-transaction replay
    .venv/bin/python bench/commitlog.py --txs 100000     # smaller replay log
    .venv/bin/python bench/commitlog.py --seconds 1      # shorter throughput runs

Prints, in one run:
  * encode_tx_record cost (the per-commit hot path of every reducer);
  * raw fsync rate: os.write of 100 bytes + os.fdatasync in a loop, no Python layers: the physical limit
    for a writer that waits for durability after every transaction;
  * durable transactions/s through the durability worker with 1 writer, 64 writer *threads* (each thread
    does append_tx + wait_durable, i.e. a blocking client per thread), and 64 *pipelined clients* (one
    producer thread, like the module host, keeps one transaction in flight per client and learns about
    durability from the durable-offset listener, like the server's confirmed reads do);
  * the open-loop append rate (one thread appends as fast as it can, then waits for the last offset);
  * replay speed of an N-transaction log (transactions_from, and fold with txdata decoding).

The log lives in a temporary directory on the same file system as --dir (default: the system temp dir),
which is removed afterwards. Replay reads a freshly written log, so it comes from the page cache.
"""

from __future__ import annotations

import argparse
import os
import queue
import shutil
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

from spacetimedb.commitlog import Commitlog, CommitlogOptions, TxInputs, encode_tx_record
from spacetimedb.durability import Durability, DurabilityOptions

TX_PAYLOAD = b"p" * 100


def sample_record() -> bytes:
    """A typical small reducer commit: inputs + 2 inserted and 2 deleted 12-byte rows."""
    inputs = TxInputs("send_message", b"\x11" * 32, b"\x22" * 16, 1_700_000_000_000_000, b"\x05hello")
    return encode_tx_record(inputs, None, [(4096, [b"r" * 12, b"s" * 12])], [(4096, [b"t" * 12, b"u" * 12])])


def bench_encode(iterations: int = 200_000) -> float:
    inputs = TxInputs("send_message", b"\x11" * 32, b"\x22" * 16, 1_700_000_000_000_000, b"\x05hello")
    inserts = [(4096, [b"r" * 12, b"s" * 12])]
    deletes = [(4096, [b"t" * 12, b"u" * 12])]
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(iterations):
            encode_tx_record(inputs, None, inserts, deletes)
        best = min(best, (time.perf_counter() - started) / iterations)
    return best * 1e6


def bench_raw_fsync(directory: Path, seconds: float) -> float:
    path = directory / "raw-fsync"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        count = 0
        deadline = time.perf_counter() + seconds
        started = time.perf_counter()
        while time.perf_counter() < deadline:
            os.write(fd, TX_PAYLOAD)
            os.fdatasync(fd)
            count += 1
        return count / (time.perf_counter() - started)
    finally:
        os.close(fd)
        path.unlink()


def open_durability(directory: Path, name: str) -> Durability:
    return Durability.open(directory / name, DurabilityOptions(commitlog=CommitlogOptions()))


def bench_blocking_writers(directory: Path, writers: int, seconds: float) -> tuple[float, float]:
    """`writers` threads, each looping append_tx + wait_durable. Returns (tx/s, tx per fsync)."""
    durability = open_durability(directory, f"threads-{writers}")
    stop = threading.Event()
    counts = [0] * writers

    def writer(slot: int) -> None:
        done = 0
        while not stop.is_set():
            durability.wait_durable(durability.append_tx(TX_PAYLOAD))
            done += 1
        counts[slot] = done

    threads = [threading.Thread(target=writer, args=(slot,)) for slot in range(writers)]
    fsyncs_before = durability.fsync_count
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)  # the measurement window
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    fsyncs = durability.fsync_count - fsyncs_before
    durability.close()
    total = sum(counts)
    return total / elapsed, total / max(fsyncs, 1)


def bench_pipelined_clients(directory: Path, clients: int, seconds: float) -> tuple[float, float]:
    """One producer thread keeps one transaction in flight per client; a client's next transaction is
    issued when the durable-offset listener reports its previous one durable. Returns (tx/s, tx/fsync)."""
    durability = open_durability(directory, f"pipelined-{clients}")
    wakeups: queue.SimpleQueue[int] = queue.SimpleQueue()
    durability.add_durable_listener(wakeups.put)  # one wake-up per fsync, not per transaction
    in_flight: deque[int] = deque()
    completed = 0
    fsyncs_before = durability.fsync_count
    started = time.perf_counter()
    deadline = started + seconds
    for _ in range(clients):
        in_flight.append(durability.append_tx(TX_PAYLOAD))
    while True:
        durable = wakeups.get()
        finished = 0
        while in_flight and in_flight[0] <= durable:
            in_flight.popleft()
            finished += 1
        completed += finished
        if time.perf_counter() >= deadline:
            break
        for _ in range(finished):
            in_flight.append(durability.append_tx(TX_PAYLOAD))
    elapsed = time.perf_counter() - started
    fsyncs = durability.fsync_count - fsyncs_before
    durability.close()
    return completed / elapsed, completed / max(fsyncs, 1)


def bench_open_loop(directory: Path, transactions: int) -> tuple[float, float]:
    """One thread appends `transactions` as fast as it can, then waits for the last to be durable."""
    durability = open_durability(directory, "open-loop")
    started = time.perf_counter()
    last = 0
    for _ in range(transactions):
        last = durability.append_tx(TX_PAYLOAD)
    durability.wait_durable(last)
    elapsed = time.perf_counter() - started
    per_fsync = durability.commit_count / max(durability.fsync_count, 1)
    durability.close()
    return transactions / elapsed, per_fsync


def write_replay_log(directory: Path, transactions: int) -> tuple[Path, int]:
    path = directory / "replay"
    record = sample_record()
    batch = [record] * 1000
    with Commitlog.open(path, CommitlogOptions()) as log:
        remaining = transactions
        while remaining:
            count = min(remaining, len(batch))
            log.append_commits(batch[:count])
            remaining -= count
        log.sync()
    size = sum(p.stat().st_size for p in path.glob("*.stdb.log"))
    return path, size


def bench_replay(path: Path, size: int) -> dict[str, float]:
    with Commitlog.open(path, CommitlogOptions()) as log:
        started = time.perf_counter()
        count = sum(1 for _ in log.transactions_from(0))
        iterate = time.perf_counter() - started
        started = time.perf_counter()
        folded = log.fold_transactions(0, lambda offset, record: None)
        fold = time.perf_counter() - started
        started = time.perf_counter()
        tail = sum(1 for _ in log.transactions_from(count - 1000))
        seek = time.perf_counter() - started
    assert folded == count and tail == 1000
    return {
        "count": count,
        "tx_per_s": count / iterate,
        "mb_per_s": size / iterate / 1e6,
        "fold_tx_per_s": count / fold,
        "seek_ms": seek * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--txs", type=int, default=1_000_000, help="transactions in the replay log")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each throughput run")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the temporary logs")
    args = parser.parse_args()
    if args.txs < 1000:
        parser.error("--txs must be at least 1000")

    workdir = Path(tempfile.mkdtemp(prefix="stdb-bench-commitlog-", dir=args.dir))
    try:
        run(workdir, args.txs, args.seconds)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run(workdir: Path, transactions: int, seconds: float) -> None:
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, logs in {workdir}")
    print(f"encode_tx_record (inputs + 2 inserted + 2 deleted 12-byte rows): {bench_encode():.2f} us")

    raw = bench_raw_fsync(workdir, seconds)
    print(f"raw fsync rate (os.write 100 B + fdatasync loop):             {raw:10,.0f} fsyncs/s")

    one, _ = bench_blocking_writers(workdir, 1, seconds)
    print(f"durable tx/s, 1 writer (append_tx + wait_durable):            {one:10,.0f} tx/s")

    threads, threads_batch = bench_blocking_writers(workdir, 64, seconds)
    print(
        f"durable tx/s, 64 writer threads (each append + wait):         {threads:10,.0f} tx/s"
        f"  ({threads_batch:.1f} tx/fsync, {threads / raw:.1f}x raw)"
    )

    pipelined, pipelined_batch = bench_pipelined_clients(workdir, 64, seconds)
    print(
        f"durable tx/s, 64 pipelined clients (1 producer + listener):   {pipelined:10,.0f} tx/s"
        f"  ({pipelined_batch:.1f} tx/fsync, {pipelined / raw:.1f}x raw)"
    )

    open_loop, open_loop_batch = bench_open_loop(workdir, 200_000)
    print(
        f"open-loop appends, 200k tx then wait for the last:            {open_loop:10,.0f} tx/s"
        f"  ({open_loop_batch:.0f} tx/fsync)"
    )

    started = time.perf_counter()
    path, size = write_replay_log(workdir, transactions)
    written = time.perf_counter() - started
    print(f"wrote a {transactions:,}-transaction log ({size / 1e6:.0f} MB) in {written:.1f}s")
    replay = bench_replay(path, size)
    print(
        f"replay (transactions_from):                                   {replay['tx_per_s']:10,.0f} tx/s"
        f"  ({replay['mb_per_s']:.0f} MB/s)"
    )
    print(
        f"replay + txdata decode (fold_transactions):                   {replay['fold_tx_per_s']:10,.0f} tx/s"
    )
    print(
        f"seek to the last 1000 of {replay['count']:,} via the offset index:         {replay['seek_ms']:8.1f} ms"
    )
    print()
    print("What the numbers mean:")
    print("  raw fsync rate       every transaction waits for its own fsync: the ceiling without batching")
    print("  64 writer threads    blocking clients, one thread each; the GIL and thread wake-ups cap it")
    print("  64 pipelined clients how the server runs: one host thread commits, durability is reported by")
    print("                       the listener (one wake-up per fsync), each client keeps 1 tx in flight")
    print("  open-loop appends    the most the worker can write when nobody waits in between")


if __name__ == "__main__":
    main()
