"""Reducer calls of foreign modules (the keynote module built by SpacetimeDB's toolchains) beside the Python
keynote module, through the module host of one database, no network: the per-call cost of an empty reducer and
of the keynote ``transfer``.

Run: .venv/bin/python bench/foreign.py [--calls N] [--accounts N]
``bench/reducer.py`` prints the same rows through ``foreign_rows(run, calls, accounts)``.

Each entry of ``KEYNOTE_PROGRAMS`` is one implementation of the keynote module (reducers ``seed(n,
initial_balance)``, ``transfer(from_id, to_id, amount)``, ``noop()``) and its label; engines add theirs here.
"""

from __future__ import annotations

import argparse
import random
import struct
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spacetimedb.host.database import Database
from spacetimedb.sats import Identity

ROOT = Path(__file__).resolve().parents[1]
DB = Identity(0xC2 << 248 | 0xBF)
OWNER = Identity(0xC2 << 248 | 0x01)

SDK_VERSION = "2.10.1"  # npm spacetimedb, the TypeScript module's library


class Unavailable(Exception):
    """This machine cannot build that implementation (its row is left out, saying why)."""


def typescript_keynote() -> bytes:
    """tests/fixtures/ts_modules/keynote bundled as ``spacetime publish -p`` does (npm spacetimedb installed once
    into the CLI's tools cache; needs Node.js and npm)."""
    import shutil
    import subprocess

    from spacetimedb.cli.jsbuild import build_typescript, tools_cache

    if shutil.which("npm") is None or shutil.which("node") is None:
        raise Unavailable("the TypeScript keynote module needs Node.js and npm to be bundled")

    packages = tools_cache() / f"bench-spacetimedb-{SDK_VERSION}"
    if not (packages / "node_modules" / "spacetimedb").is_dir():
        packages.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", f"spacetimedb@{SDK_VERSION}"],
            cwd=packages,
            check=True,
        )
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "keynote"
        shutil.copytree(ROOT / "tests" / "fixtures" / "ts_modules" / "keynote", project)
        (project / "node_modules").symlink_to(packages / "node_modules", target_is_directory=True)
        return build_typescript(project)


# label -> the program's bytes (read when measured)
KEYNOTE_PROGRAMS: dict[str, Callable[[], bytes]] = {
    "python": lambda: (ROOT / "examples" / "keynote" / "keynote_module.py").read_bytes(),
    "wasm (Rust)": lambda: (ROOT / "tests" / "fixtures" / "keynote.wasm").read_bytes(),
    "js (TypeScript)": typescript_keynote,
}

# bench/reducer.py's ``run``: (host, reducer, BSATN payloads) -> (seconds until every reply, seconds until durable,
# failures, CPU seconds of the process)
Runner = Callable[[Any, str, list[bytes]], tuple[float, float, int, float]]


@dataclass(frozen=True, slots=True)
class ForeignRow:
    module: str
    reducer: str
    calls: int
    micros_per_call: float  # until the reply
    micros_per_durable_call: float
    cpu_micros_per_call: float  # the process's CPU time (every thread), which a busy machine does not inflate
    failed: int

    def text(self) -> str:
        return (
            f"{self.module:16} {self.reducer:10} {self.calls:9,} {self.micros_per_call:14.1f} "
            f"{self.micros_per_durable_call:16.1f} {self.cpu_micros_per_call:13.1f} {self.failed:7}"
        )


HEADER = (
    f"{'module':16} {'reducer':10} {'calls':>9} {'µs/call':>14} {'µs/call durable':>16} {'CPU µs/call':>13} "
    f"{'failed':>7}"
)


def measure(label: str, program: bytes, run: Runner, calls: int, accounts: int) -> list[ForeignRow]:
    """The rows of one keynote implementation: its ``noop`` and ``transfer``, ``calls`` each."""
    with tempfile.TemporaryDirectory() as tmp:
        database = Database.create(Path(tmp) / "keynote", DB, OWNER, program)
        try:
            host = database.host
            seed = host.call_reducer_sync("seed", [accounts, 1_000_000_000], sender=OWNER, json_args=True)
            assert seed.ok, seed.message
            rng = random.Random(42)
            transfers = [struct.pack("<IIq", *rng.sample(range(accounts), 2), 1) for _ in range(calls)]
            run(host, "noop", [b""] * max(1, calls // 10))  # warm-up
            rows = []
            for name, payloads in (("noop", [b""] * calls), ("transfer", transfers)):
                replied, durable, failed, cpu = run(host, name, payloads)
                per_call = [seconds / calls * 1e6 for seconds in (replied, durable, cpu)]
                rows.append(ForeignRow(label, name, calls, *per_call, failed))
            return rows
        finally:
            database.shutdown()


def foreign_rows(run: Runner, calls: int = 20_000, accounts: int = 10_000) -> list[ForeignRow]:
    """Every keynote implementation's rows, Python's first."""
    rows: list[ForeignRow] = []
    for label, program in KEYNOTE_PROGRAMS.items():
        try:
            code = program()
        except Unavailable as why:
            print(f"({label}: left out: {why})", file=sys.stderr)
            continue
        rows.extend(measure(label, code, run, calls, accounts))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--accounts", type=int, default=10_000)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from reducer import run  # the same pipelined driver as bench/reducer.py
    from spacetimedb.server.app import tune_gc

    tune_gc()
    print(HEADER)
    for row in foreign_rows(run, args.calls, args.accounts):
        print(row.text())


if __name__ == "__main__":
    main()
