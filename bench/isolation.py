"""How well databases are isolated from each other's incidents: latency of a neighbour while one database's
worker crashes, overruns its time budget, or while a 4 MB module compiles.

Run: .venv/bin/python bench/isolation.py [--seconds S] [--rate N]

A server is started on a temporary directory with two databases: `neighbour` (the chat example) and `victim`
(a module whose reducers crash or spin). A steady stream of reducer calls (``--rate`` per second, each on its
own keep-alive HTTP connection pool) goes to the neighbour and ``GET /v1/ping`` goes to the server, during each
incident in turn:

  crash      the victim's worker exits (``os._exit``) every 0.5 s and relaunches on the next call
  overrun    the victim runs ``time.sleep(60)`` and is killed at budget + grace (5 s + 2 s), then relaunches
  publish    a 4 MB module source is published (validated in a throw-away worker, then created)

For each incident it prints the neighbour's call latency and the ping latency (p50/p99/max) next to the same
figures measured with no incident in the same run, and the targets (p99 < 100 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
CHAT = (ROOT / "examples" / "chat" / "quickstart_chat.py").read_bytes()
VICTIM = b"""
import os, time
from spacetimedb import reducer, ReducerContext

@reducer
def crash(ctx: ReducerContext) -> None:
    os._exit(1)

@reducer
def overrun(ctx: ReducerContext) -> None:
    time.sleep(60)

@reducer
def fine(ctx: ReducerContext) -> None:
    pass
"""
TARGET_MS = 100.0


def big_module(megabytes: int = 4) -> bytes:
    """A valid module of about ``megabytes`` MB: a large literal table and many small functions."""
    lines = [b"from spacetimedb import reducer, ReducerContext", b"TABLE = ["]
    row = b"    (" + b", ".join(str(i).encode() for i in range(20)) + b"),"
    size = sum(len(line) for line in lines)
    while size < megabytes << 20:
        lines.append(row)
        size += len(row) + 1
    lines.append(b"]")
    lines.append(b"@reducer\ndef fine(ctx: ReducerContext) -> None:\n    pass")
    return b"\n".join(lines) + b"\n"


def start_server(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    command = [
        sys.executable, "-m", "spacetimedb.server", "--listen-addr", "127.0.0.1:0", "--data-dir", str(data_dir),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert process.stdout is not None
    for _ in range(50):
        line = process.stdout.readline()
        if line.startswith("listening on "):
            return process, line.split()[-1]
    process.kill()
    raise RuntimeError("the server did not start")


class Probe:
    """Neighbour calls and pings at a steady rate; latencies in ms."""

    def __init__(self, http: aiohttp.ClientSession, url: str, rate: float) -> None:
        self.http = http
        self.url = url
        self.interval = 1.0 / rate
        self.calls: list[float] = []
        self.pings: list[float] = []
        self.failures = 0

    async def _timed(self, method: str, path: str, into: list[float], **kwargs: object) -> None:
        started = time.perf_counter()
        try:
            async with self.http.request(method, self.url + path, **kwargs) as response:
                await response.read()
                if response.status != 200:
                    self.failures += 1
        except aiohttp.ClientError:
            self.failures += 1
        into.append((time.perf_counter() - started) * 1000)

    async def run(self, stop: asyncio.Event) -> None:
        tasks = set()
        while not stop.is_set():
            call = self._timed(
                "POST", "/v1/database/neighbour/call/send_message", self.calls, json=["still here"]
            )
            tasks.add(asyncio.ensure_future(call))
            tasks.add(asyncio.ensure_future(self._timed("GET", "/v1/ping", self.pings)))
            await asyncio.sleep(self.interval)
        await asyncio.gather(*tasks)


async def measure(
    http: aiohttp.ClientSession, url: str, rate: float, seconds: float, incident: object
) -> Probe:
    probe = Probe(http, url, rate)
    stop = asyncio.Event()
    runner = asyncio.ensure_future(probe.run(stop))
    try:
        if incident is None:
            await asyncio.sleep(seconds)
        else:
            await asyncio.wait_for(incident, seconds + 60)  # type: ignore[arg-type]
    finally:
        stop.set()
        await runner
    return probe


async def crash_loop(http: aiohttp.ClientSession, url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        async with http.post(f"{url}/v1/database/victim/call/crash", json=[]) as response:
            await response.read()
        await asyncio.sleep(0.5)


async def overrun(http: aiohttp.ClientSession, url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        async with http.post(f"{url}/v1/database/victim/call/overrun", json=[]) as response:
            await response.read()


async def publish_big(http: aiohttp.ClientSession, url: str, program: bytes) -> None:
    async with http.put(f"{url}/v1/database/big", data=program) as response:
        body = await response.text()
        if response.status != 200:
            raise RuntimeError(f"publishing the 4 MB module failed: {response.status} {body[:200]}")


def summary(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    if not ordered:
        return (0.0, 0.0, 0.0)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered), p99, ordered[-1]


async def main_async(args: argparse.Namespace) -> list[dict[str, object]]:
    with tempfile.TemporaryDirectory() as tmp:
        process, url = start_server(Path(tmp) / "data")
        try:
            async with aiohttp.ClientSession() as http:
                for name, program in (("neighbour", CHAT), ("victim", VICTIM)):
                    async with http.put(f"{url}/v1/database/{name}", data=program) as response:
                        assert response.status == 200, await response.text()
                program = big_module()
                incidents = {
                    "none": None,
                    "crash": lambda: crash_loop(http, url, args.seconds),
                    "overrun": lambda: overrun(http, url, args.seconds),
                    "publish 4 MB": lambda: publish_big(http, url, program),
                }
                rows = []
                for name, make in incidents.items():
                    started = time.perf_counter()
                    probe = await measure(
                        http, url, args.rate, args.seconds, None if make is None else make()
                    )
                    rows.append(
                        {
                            "incident": name,
                            "seconds": round(time.perf_counter() - started, 2),
                            "calls": summary(probe.calls),
                            "pings": summary(probe.pings),
                            "samples": len(probe.calls),
                            "failures": probe.failures,
                        }
                    )
                return rows
        finally:
            process.terminate()
            process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each incident (default 6)")
    parser.add_argument("--rate", type=float, default=50.0, help="neighbour calls (and pings) per second")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON too")
    args = parser.parse_args()
    rows = asyncio.run(main_async(args))
    print(
        f"{'incident':14} {'secs':>6} {'calls':>6} {'fail':>5}   neighbour call ms p50/p99/max   ping ms p50/p99/max"
    )
    for row in rows:
        calls, pings = row["calls"], row["pings"]
        print(
            f"{row['incident']:14} {row['seconds']:6.1f} {row['samples']:6} {row['failures']:5}   "
            f"{calls[0]:7.1f} {calls[1]:7.1f} {calls[2]:7.1f}         "  # type: ignore[index]
            f"{pings[0]:6.1f} {pings[1]:6.1f} {pings[2]:6.1f}"  # type: ignore[index]
        )
    worst_call = max(row["calls"][1] for row in rows if row["incident"] != "none")  # type: ignore[index]
    worst_ping = max(row["pings"][1] for row in rows if row["incident"] != "none")  # type: ignore[index]
    verdict = "met" if max(worst_call, worst_ping) < TARGET_MS else "NOT met"
    print(
        f"worst p99 during an incident: calls {worst_call:.1f} ms, ping {worst_ping:.1f} ms "
        f"(target < {TARGET_MS:g} ms: {verdict})"
    )
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
