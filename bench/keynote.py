"""The keynote transfer benchmark: our server against a Python web stack on PostgreSQL and on SQLite, one run.

    .venv/bin/python bench/keynote.py --seconds 20 --alpha 0,1.5 --clients 64 \\
        --systems ours,postgres,sqlite --modes closed,pipelined
    .venv/bin/python bench/keynote.py --seconds 15 --systems ours --alpha 0 --modes pipelined --profile
    .venv/bin/python bench/keynote.py --seconds 10 --systems ours --databases 1,2   # one database vs two at once

Workload (fixed): 100,000 accounts of 1,000,000,000 each; every request transfers 1 between two distinct
accounts drawn from a Zipf distribution with exponent alpha (0 = uniform), the same seeded sequence for every
system. C client connections, each closed-loop (1 request in flight) or pipelined (up to 40 in flight).
  ours      python -m spacetimedb.server with examples/keynote/keynote_module.py; WebSocket v3 (v2 with
            --ws-protocol v2), confirmed=true: a reducer result arrives only once its transaction is durable.
  postgres  Starlette + uvicorn + asyncpg (pool 64) on a temporary PostgreSQL cluster, serializable.
  sqlite    Starlette + uvicorn + sqlite3, WAL, synchronous=FULL.
(bench/keynote_peer.py has the peers' transactions, bench/keynote_systems.py how everything is started.)

--databases 1,2 (ours only) runs each of our cases once per count: with N, N keynote databases on the same
server (keynote, keynote-2, ...; each in its own worker process), each seeded alike, the --clients split
evenly between them and driven at once. The counts run back to back, with the same clients and mode, and the
summed TPS of N databases is printed over that of one (the target for two: >= 1.5x), with the TPS of each
database and the CPU of each of the server's processes.

Each case (system, alpha, mode) re-seeds the accounts, runs the load generator (bench/keynote_loadgen.py, in
--generators separate processes) for --warmup then --seconds, and checks that the total balance is unchanged.
Printed per case: mean TPS (committed transfers/s over the measured window), the standard deviation of the
per-second TPS, p50/p99 latency (send -> reply), refused/failed requests, the CPU used by the generator and by
the system's processes; then ours/peer ratios. Everything is also written to bench/results/keynote-<time>.json.
Every process started here is stopped at the end, also on errors and Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import keynote_profile
from keynote_loadgen import BUCKET_SECONDS
from keynote_systems import (
    ROOT,
    OurServer,
    PeerServer,
    cpu_by_process,
    machine_busy,
    start_group,
    stop_group,
)
from keynote_workload import ACCOUNTS, INITIAL_BALANCE, draw_pairs, summarize_skew, write_pairs

RESULTS = Path(__file__).resolve().parent / "results"
WINDOWS = {"closed": 1, "pipelined": 40}
SYSTEMS = ("ours", "postgres", "sqlite")
# targets of the issue, for information: ours / peer, per mode
TARGETS = {
    ("pipelined", "postgres"): 10.0,
    ("pipelined", "sqlite"): 30.0,
    ("closed", "postgres"): 3.0,
    ("closed", "sqlite"): 3.0,
}
# N databases driven at once / one database, on the same server (each database has its own worker process)
DATABASES_TARGETS = {2: 1.5}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=20, help="measured seconds per case")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of load before measuring")
    parser.add_argument("--alpha", default="0,1.5", help="Zipf exponents, comma-separated")
    parser.add_argument("--clients", type=int, default=64, help="concurrent connections")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--modes", default="closed,pipelined")
    parser.add_argument("--generators", type=int, default=1, help="load generator processes")
    parser.add_argument(
        "--pairs",
        type=int,
        default=1 << 20,
        help="length of the pre-drawn transfer sequence (replayed from the start if used up)",
    )
    parser.add_argument("--seed", type=int, default=20_240_101)
    parser.add_argument("--ws-protocol", choices=["v3", "v2"], default="v3")
    parser.add_argument("--peer-workers", type=int, default=1, help="uvicorn worker processes of the peers")
    parser.add_argument(
        "--databases",
        default=None,
        metavar="N,...",
        help="ours only: numbers of keynote databases to drive at once on one server, e.g. 1,2 (the clients "
        "split evenly between them); prints N databases' summed TPS over one's",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="record our server with py-spy during its cases (their numbers are then not clean)",
    )
    parser.add_argument(
        "--profile-native",
        action="store_true",
        help="with --profile: also sample C frames (py-spy --native), e.g. to see garbage collection",
    )
    parser.add_argument("--output", type=Path, default=None, help="JSON file (default bench/results/...)")
    args = parser.parse_args(argv)
    args.alphas = [float(a) for a in args.alpha.split(",") if a.strip()]
    args.system_list = [s.strip() for s in args.systems.split(",") if s.strip()]
    args.mode_list = [m.strip() for m in args.modes.split(",") if m.strip()]
    try:
        args.database_counts = (
            None
            if args.databases is None
            else sorted({int(n) for n in args.databases.split(",") if n.strip()})
        )
    except ValueError:
        parser.error(f"--databases takes comma-separated counts, e.g. 1,2, not {args.databases!r}")
    for name in args.system_list:
        if name not in SYSTEMS:
            parser.error(f"unknown system {name!r}; choose from {', '.join(SYSTEMS)}")
    for mode in args.mode_list:
        if mode not in WINDOWS:
            parser.error(f"unknown mode {mode!r}; choose from {', '.join(WINDOWS)}")
    if args.generators < 1 or args.clients < args.generators:
        parser.error("need 1 <= --generators <= --clients")
    if args.database_counts is not None:
        if "ours" not in args.system_list:
            parser.error("--databases applies to our server: add ours to --systems")
        if not args.database_counts or args.database_counts[0] < 1:
            parser.error("--databases takes counts of 1 or more, e.g. 1,2")
        if args.clients < args.database_counts[-1]:
            parser.error("need at least one client per database (--clients >= the largest --databases)")
    return args


# ---- one case ------------------------------------------------------------------------------------------------


def split_evenly(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def start_generators(
    args: argparse.Namespace,
    system: Any,
    mode: str,
    pairs_path: Path,
    tmp: Path,
    databases: list[str] | None = None,
) -> list[subprocess.Popen[bytes]]:
    target = system.target()
    # with several databases, connection k (counted over all generators) drives database k mod N
    targets = [system.target(name) for name in databases] if databases else [target]
    processes = []
    first_connection = 0
    for index, connections in enumerate(split_evenly(args.clients, args.generators)):
        config = {
            "kind": target.kind,
            "host": target.host,
            "port": target.port,
            "path": target.path,
            "token": target.token,
            "connections": connections,
            "window": WINDOWS[mode],
            "warmup": args.warmup,
            "seconds": args.seconds,
            "pairs_path": str(pairs_path),
            "process_index": index,
            "process_count": args.generators,
            "ws_protocols": "v2.bsatn.spacetimedb"
            if args.ws_protocol == "v2"
            else "v3.bsatn.spacetimedb, v2.bsatn.spacetimedb",
        }
        if databases:
            config["connection_paths"] = [
                targets[k % len(targets)].path
                for k in range(first_connection, first_connection + connections)
            ]
        first_connection += connections
        config_path = tmp / f"generator-{index}.json"
        config_path.write_text(json.dumps(config))
        processes.append(
            start_group(
                [
                    sys.executable,
                    str(Path(__file__).resolve().parent / "keynote_loadgen.py"),
                    str(config_path),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                cwd=ROOT,
            )
        )
    return processes


def read_generator_line(process: subprocess.Popen[bytes], what: str) -> str:
    assert process.stdout is not None
    line = process.stdout.readline().decode().strip()
    if not line:
        raise RuntimeError(
            f"load generator {what}: ended with status {process.wait()} (see its stderr above)"
        )
    return line


def run_case(
    args: argparse.Namespace,
    system: Any,
    alpha: float,
    mode: str,
    pairs_path: Path,
    tmp: Path,
    databases: list[str] | None = None,
) -> dict[str, Any]:
    """One case; ``databases``: several of our databases driven at once (None: the system's one database)."""
    if databases is None:
        system.seed(ACCOUNTS, INITIAL_BALANCE)
        before = system.total()
    else:
        seed_databases(system, databases)
        before_by_database = {name: system.total(name) for name in databases}
    generators = start_generators(args, system, mode, pairs_path, tmp, databases)
    profiler = None
    try:
        for process in generators:
            if read_generator_line(process, "start") != "READY":
                raise RuntimeError("load generator: unexpected first line")
        for process in generators:
            assert process.stdin is not None
            process.stdin.write(b"GO\n")
            process.stdin.flush()
        time.sleep(args.warmup)
        profile_path = None
        if args.profile and system.name == "ours":
            count = f"-{len(databases)}db" if databases else ""
            profile_path = RESULTS / f"keynote-profile-{int(time.time())}-alpha{alpha:g}-{mode}{count}.txt"
            profiler = keynote_profile.start_recording(
                next(iter(system.pids())), args.seconds, profile_path, native=args.profile_native
            )
        cpu_start, machine_start = cpu_by_process(system.pids()), machine_busy()
        time.sleep(args.seconds)
        cpu_end, machine_end = cpu_by_process(system.pids()), machine_busy()
        labels = system.process_labels() if databases else {}  # which of those processes is which
        reports = [json.loads(read_generator_line(process, "result")) for process in generators]
        if profiler is not None:
            _, errors = profiler.communicate(timeout=60)
            if profiler.returncode != 0:
                print(f"py-spy failed: {errors.decode(errors='replace')[-500:]}", file=sys.stderr)
    finally:
        for process in generators:
            stop_group(process, grace=2.0)
        stop_group(profiler, grace=2.0)
    case = summarize_case(system.name, alpha, mode, args, reports)
    case["server_cpu_percent"] = 100 * (sum(cpu_end.values()) - sum(cpu_start.values())) / args.seconds
    busy = machine_end[0] - machine_start[0]
    case["machine_cpu_percent"] = 100 * busy / max(1e-9, machine_end[1] - machine_start[1])
    if databases is None:
        after = system.total()
        case["balance"] = balance_check(before, after)
        if "retries" in after:
            case["serialization_retries"] = after["retries"] - before.get("retries", 0)
    else:
        after_by_database = {name: system.total(name) for name in databases}
        describe_databases(case, system, databases, reports, before_by_database, after_by_database)
        case["cpu_percent_by_process"] = cpu_percent_by_label(labels, cpu_start, cpu_end, args.seconds)
    if profile_path is not None and profile_path.exists():
        case["profile"] = str(profile_path)
    return case


def seed_databases(system: Any, databases: list[str]) -> None:
    """Seed every database at once: each seeds in its own worker process."""
    with ThreadPoolExecutor(len(databases)) as pool:
        list(pool.map(lambda name: system.seed(ACCOUNTS, INITIAL_BALANCE, name), databases))


def balance_check(before: dict[str, int], after: dict[str, int], databases: int = 1) -> dict[str, Any]:
    expected = databases * ACCOUNTS * INITIAL_BALANCE
    return {
        "before": before,
        "after": after,
        "expected_sum": expected,
        "ok": after["sum"] == before["sum"] == expected and after["count"] == databases * ACCOUNTS,
    }


def describe_databases(
    case: dict[str, Any],
    system: Any,
    databases: list[str],
    reports: list[dict[str, Any]],
    before: dict[str, dict[str, int]],
    after: dict[str, dict[str, int]],
) -> None:
    """Add to ``case`` what several databases driven at once need: the TPS of each, and a balance check of
    each (the case's own balance is their sum, checked only if every database's is right)."""
    name_of_path = {system.target(name).path: name for name in databases}
    committed = dict.fromkeys(databases, 0)
    for report in reports:
        for path, count in report["ok_by_path"].items():
            committed[name_of_path[path]] += count
    case["databases"] = len(databases)
    case["tps_by_database"] = {name: count / case["seconds"] for name, count in committed.items()}
    case["balance_by_database"] = {name: balance_check(before[name], after[name]) for name in databases}

    def summed(totals: dict[str, dict[str, int]]) -> dict[str, int]:
        return {key: sum(total[key] for total in totals.values()) for key in ("count", "sum")}

    case["balance"] = balance_check(summed(before), summed(after), len(databases))
    case["balance"]["ok"] = all(check["ok"] for check in case["balance_by_database"].values())


def cpu_percent_by_label(
    labels: dict[int, str], start: dict[int, float], end: dict[int, float], seconds: float
) -> dict[str, float]:
    """CPU use (% of one core) per process label over the window, in the labels' order; unlabelled processes
    count as ``other``."""
    out = dict.fromkeys(labels.values(), 0.0)
    for pid, used in end.items():
        label = labels.get(pid, "other")
        out[label] = out.get(label, 0.0) + 100 * (used - start.get(pid, 0.0)) / seconds
    return out


def percentile(histogram: dict[int, int], overflow: list[float], fraction: float) -> float | None:
    """The latency (seconds) below which ``fraction`` of the replies came (bucket midpoints)."""
    count = sum(histogram.values()) + len(overflow)
    if not count:
        return None
    rank = fraction * count
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            return (bucket + 0.5) * BUCKET_SECONDS
    ordered = sorted(overflow)
    return ordered[min(len(ordered) - 1, int(rank - seen))]


def summarize_case(
    name: str, alpha: float, mode: str, args: argparse.Namespace, reports: list[dict[str, Any]]
) -> dict[str, Any]:
    per_second = [sum(values) for values in zip(*(r["per_second"] for r in reports), strict=True)]
    histogram: dict[int, int] = {}
    overflow: list[float] = []
    for report in reports:
        for bucket, count in report["histogram"].items():
            histogram[int(bucket)] = histogram.get(int(bucket), 0) + count
        overflow.extend(report["overflow"])
    ok = sum(r["ok"] for r in reports)
    replies = ok + sum(r["refused"] + r["errors"] for r in reports)
    generator_cpu = sum(r["cpu_seconds"] for r in reports)
    return {
        "system": name,
        "alpha": alpha,
        "mode": mode,
        "window": WINDOWS[mode],
        "clients": args.clients,
        "seconds": args.seconds,
        "warmup": args.warmup,
        "tps": ok / args.seconds,
        "tps_stddev": statistics.pstdev(per_second) if per_second else 0.0,
        "per_second": per_second,
        "p50_ms": _ms(percentile(histogram, overflow, 0.50)),
        "p99_ms": _ms(percentile(histogram, overflow, 0.99)),
        "max_ms": _ms(
            max(overflow) if overflow else (max(histogram) + 1) * BUCKET_SECONDS if histogram else None
        ),
        "committed": ok,
        "refused": sum(r["refused"] for r in reports),
        "errors": sum(r["errors"] for r in reports),
        "all_committed": sum(r["all_ok"] for r in reports),
        "all_refused": sum(r["all_refused"] for r in reports),
        "all_errors": sum(r["all_errors"] for r in reports),
        "unfinished": sum(r["unfinished"] for r in reports),
        "error_samples": [s for r in reports for s in r["error_samples"]][:5],
        "generator_cpu_percent": 100 * generator_cpu / args.seconds,
        "generator_cpu_us_per_request": 1e6 * generator_cpu / replies if replies else None,
        "generator_processes": len(reports),
        "pairs_wrapped": any(r["wrapped"] for r in reports),
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


# ---- systems, workloads, output ------------------------------------------------------------------------------


def make_system(name: str, args: argparse.Namespace) -> Any:
    if name == "ours":
        return OurServer(databases=max(args.database_counts or [1]))
    return PeerServer(name, workers=args.peer_workers)


def database_sets(args: argparse.Namespace, system: Any) -> list[list[str] | None]:
    """The databases each case of this system drives at once, in order (None: the plain single-database case)."""
    if system.name != "ours" or args.database_counts is None:
        return [None]
    return [system.databases[:count] for count in args.database_counts]


@contextlib.contextmanager
def running(system: Any) -> Iterator[Any]:
    try:
        system.start()
        yield system
    finally:
        system.stop()


def prepare_pairs(args: argparse.Namespace, tmp: Path) -> dict[float, tuple[Path, float]]:
    """One pairs file per alpha (the same for every system), and the share of touches of its 10 hottest ids."""
    out = {}
    for alpha in args.alphas:
        pairs = draw_pairs(ACCOUNTS, alpha, args.pairs, args.seed)
        path = tmp / f"pairs-{alpha:g}.u32"
        write_pairs(path, pairs)
        out[alpha] = (path, summarize_skew(pairs))
    return out


def versions(postgresql: str | None) -> dict[str, str]:
    found = {
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": postgresql or "not used",
    }
    for package in ("aiohttp", "uvloop", "asyncpg", "starlette", "uvicorn", "httptools", "py-spy"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def print_case(case: dict[str, Any]) -> None:
    def num(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    balance = "ok" if case["balance"]["ok"] else "WRONG"
    print(
        f"{case_label(case):9} {case['alpha']:>5g} {case['mode']:10} {case['tps']:>10,.0f} {case['tps_stddev']:>8,.0f} "
        f"{num(case['p50_ms'], '.2f'):>8} {num(case['p99_ms'], '.2f'):>8} {case['refused']:>7} {case['errors']:>6} "
        f"{case['server_cpu_percent']:>6.0f}% {case['generator_cpu_percent']:>6.0f}% "
        f"{num(case['generator_cpu_us_per_request'], '.1f'):>7} {case['balance']['after']['sum']:>17,} {balance}",
        flush=True,
    )


def case_label(case: dict[str, Any]) -> str:
    return f"{case['system']} {case['databases']}db" if "databases" in case else case["system"]


def rest_of_machine(case: dict[str, Any]) -> float:
    """CPU (% of one core) used during the case by processes that are neither the system nor the load
    generator: on a shared machine, what the system had to compete with."""
    busy = case["machine_cpu_percent"] * (os.cpu_count() or 1)
    return max(0.0, busy - case["server_cpu_percent"] - case["generator_cpu_percent"])


def print_notes(case: dict[str, Any]) -> None:
    """What the table row does not show but a reader should know."""
    if "databases" in case:
        print(
            "    TPS per database: "
            + ", ".join(
                f"{name} {tps:,.0f} ({'ok' if case['balance_by_database'][name]['ok'] else 'balance WRONG'})"
                for name, tps in case["tps_by_database"].items()
            )
        )
        print(
            "    CPU (% of one core): "
            + ", ".join(
                f"{label} {percent:.0f}%" for label, percent in case["cpu_percent_by_process"].items()
            )
            + f"; load generator {case['generator_cpu_percent']:.0f}%"
            + f"; everything else on the machine {rest_of_machine(case):.0f}%"
            + f" (the machine was {case['machine_cpu_percent']:.0f}% busy, {os.cpu_count()} CPUs)"
        )
    if case.get("serialization_retries"):
        print(f"    {case['serialization_retries']:,} serialization failures retried")
    if case["unfinished"]:
        print(f"    {case['unfinished']} requests never answered")
    if case["pairs_wrapped"]:
        print("    the pre-drawn pair sequence was used up and replayed from its start (raise --pairs)")
    for sample in case["error_samples"][:2]:
        print(f"    sample error: {sample}")


HEADER = (
    f"{'system':9} {'alpha':>5} {'mode':10} {'TPS':>10} {'±sd/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'refused':>7} "
    f"{'errors':>6} {'server':>7} {'gen':>7} {'gen µs':>7} {'total balance':>17} check"
)


def ratios(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # ours against a peer: one database each (a peer has one)
    by_key = {(c["system"], c["alpha"], c["mode"]): c for c in cases if c.get("databases", 1) == 1}
    out = []
    for (system, alpha, mode), case in by_key.items():
        ours = by_key.get(("ours", alpha, mode))
        if system == "ours" or ours is None or not case["tps"]:
            continue
        ratio = ours["tps"] / case["tps"]
        target = TARGETS.get((mode, system))
        out.append(
            {
                "peer": system,
                "alpha": alpha,
                "mode": mode,
                "ours_over_peer": ratio,
                "target": target,
                "meets_target": None if target is None else ratio >= target,
            }
        )
    return out


def print_ratios(rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    print("\nours / peer (TPS, same run)")
    for row in rows:
        verdict = (
            ""
            if row["target"] is None
            else (f"  (target >= {row['target']:g}x: {'met' if row['meets_target'] else 'NOT met'})")
        )
        print(
            f"  alpha {row['alpha']:>4g} {row['mode']:10} ours/{row['peer']:9} {row['ours_over_peer']:8.2f}x{verdict}"
        )


def database_ratios(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """N databases driven at once / one database, per (alpha, mode), from the --databases cases."""
    single = {(c["alpha"], c["mode"]): c for c in cases if c.get("databases") == 1}
    out = []
    for case in cases:
        count = case.get("databases")
        one = single.get((case["alpha"], case["mode"]))
        if count is None or count == 1 or one is None or not one["tps"]:
            continue
        ratio = case["tps"] / one["tps"]
        target = DATABASES_TARGETS.get(count)
        out.append(
            {
                "databases": count,
                "alpha": case["alpha"],
                "mode": case["mode"],
                "tps": case["tps"],
                "one_database_tps": one["tps"],
                "over_one_database": ratio,
                "server_cpu_percent": case["server_cpu_percent"],
                "one_database_server_cpu_percent": one["server_cpu_percent"],
                "target": target,
                "meets_target": None if target is None else ratio >= target,
            }
        )
    return out


def print_database_ratios(rows: list[dict[str, Any]], clients: int) -> None:
    if not rows:
        return
    print(
        f"\nN databases at once / one database (summed TPS, one server, same run, {clients} clients in both)"
    )
    for row in rows:
        verdict = (
            ""
            if row["target"] is None
            else f"  (target >= {row['target']:g}x: {'met' if row['meets_target'] else 'NOT met'})"
        )
        print(
            f"  alpha {row['alpha']:>4g} {row['mode']:10} {row['databases']} databases {row['tps']:>9,.0f} TPS / "
            f"1 database {row['one_database_tps']:>9,.0f} TPS = {row['over_one_database']:5.2f}x{verdict}; "
            f"server CPU {row['server_cpu_percent']:.0f}% vs {row['one_database_server_cpu_percent']:.0f}%"
        )


def main() -> None:
    args = parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = time.time()
    load_before = os.getloadavg()
    cases: list[dict[str, Any]] = []
    profiles: dict[str, str] = {}
    postgresql: str | None = None
    with tempfile.TemporaryDirectory(prefix="keynote-") as tmp_name:
        tmp = Path(tmp_name)
        print(f"drawing {args.pairs:,} transfer pairs per alpha ...", flush=True)
        pairs = prepare_pairs(args, tmp)
        for alpha, (_, hot) in pairs.items():
            print(f"  alpha {alpha:g}: the 10 hottest accounts take {100 * hot:.1f}% of all touches")
        print(f"load average before: {' '.join(f'{x:.2f}' for x in load_before)}; {os.cpu_count()} CPUs\n")
        print(HEADER, flush=True)
        for name in args.system_list:
            with running(make_system(name, args)) as system:
                if name == "postgres":
                    postgresql = system.postgres.version()
                    print(f"  ({postgresql}, {args.peer_workers} uvicorn worker(s))", flush=True)
                for alpha in args.alphas:
                    for mode in args.mode_list:
                        for databases in database_sets(args, system):
                            case = run_case(args, system, alpha, mode, pairs[alpha][0], tmp, databases)
                            cases.append(case)
                            print_case(case)
                            print_notes(case)
                            if "profile" in case:
                                count = f", {len(databases)} database(s)" if databases else ""
                                profiles[f"alpha {alpha:g} {mode}{count}"] = case["profile"]
    ratio_rows = ratios(cases)
    print_ratios(ratio_rows)
    database_ratio_rows = database_ratios(cases)
    print_database_ratios(database_ratio_rows, args.clients)
    load_after = os.getloadavg()
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in load_after)}")
    for label, path in profiles.items():
        print(f"\npy-spy profile of our server, {label} ({path}):")
        summary = keynote_profile.summarize(Path(path))
        print(keynote_profile.format_summary(summary, possible=keynote_profile.RATE * args.seconds))
    result = {
        "benchmark": "keynote",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "arguments": {k: v for k, v in vars(args).items() if k != "output"},
        "workload": {
            "accounts": ACCOUNTS,
            "initial_balance": INITIAL_BALANCE,
            "amount": 1,
            "hottest10_share": {str(a): h for a, (_, h) in pairs.items()},
        },
        "machine": {
            "cpus": os.cpu_count(),
            "load_before": load_before,
            "load_after": load_after,
            "platform": platform.platform(),
        },
        "versions": versions(postgresql),
        "cases": cases,
        "ratios": ratio_rows,
    }
    if args.database_counts is not None:
        result["database_ratios"] = database_ratio_rows
    output = (
        args.output or RESULTS / f"keynote-{time.strftime('%Y%m%d-%H%M%S', time.localtime(started))}.json"
    )
    output.write_text(json.dumps(result, indent=1))
    print(f"\nwritten to {output}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("\ninterrupted: every process this run started has been stopped", file=sys.stderr)
        sys.exit(130)
