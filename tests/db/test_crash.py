"""Crash test: SIGKILL a process that commits transactions; after reopening, every transaction it saw
reported durable is there, transactions form a prefix, and none is partial."""

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from spacetimedb.db import RelationalDB

from .crash_child import META_ID

pytestmark = pytest.mark.slow  # real processes or long runs: ./test.sh --fast leaves these out


CHILD = Path(__file__).with_name("crash_child.py")


def run_and_kill(path: Path, seed: int) -> int:
    """Start the child, kill it at a random moment, return the highest offset it reported durable."""
    rng = random.Random(seed)
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.db.crash_child", str(path)],
        stdout=subprocess.PIPE,
        env=env,
        cwd=root,
        text=True,
    )
    assert proc.stdout is not None
    reports: list[int] = []
    reader = threading.Thread(
        target=lambda: reports.extend(int(line.split()[1]) for line in proc.stdout), daemon=True
    )
    reader.start()
    deadline = time.monotonic() + 20
    while not reports and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(rng.uniform(0.05, 1.0))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    reader.join(10)
    return max(reports, default=-1)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_keeps_every_durable_transaction_and_no_partial_one(tmp_path, seed):
    reported = run_and_kill(tmp_path / "db", seed)
    assert reported > 5, "the child reported too little before the kill"
    db = RelationalDB.open(tmp_path / "db")
    try:
        assert db.next_offset - 1 >= reported
        with db.read_tx() as tx:
            table_id = tx.table_id("t")
            rows = dict(tx.scan(table_id))
        meta = rows.pop(META_ID)
        batches: dict[int, set[int]] = {}
        for row_id, batch in rows.items():
            batches.setdefault(batch, set()).add(row_id)
        assert sorted(batches) == list(range(len(batches))), "transactions must form a prefix"
        for batch, ids in batches.items():
            assert ids == {3 * batch, 3 * batch + 1, 3 * batch + 2}, f"batch {batch} is partial"
        assert meta == len(batches) - 1
        # offset 0 created the table; batch b was committed at offset b + 1
        assert len(batches) >= reported
    finally:
        db.close()
