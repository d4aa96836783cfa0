"""How long launching a database's worker takes (spawn, sandbox, open an empty database), against its budget.

    .venv/bin/python bench/worker_launch.py                        # 20 launches, 10 publishes
    .venv/bin/python bench/worker_launch.py --launches 50 --publishes 20

Starts ``python -m spacetimedb.server`` on a temporary data directory and publishes a tiny module: no tables,
a ``noop`` reducer, and ``exit_worker``, which ends its own worker process with status 0 (a clean stop, so the
server neither logs a failure nor counts it against the database). Then, per launch:

  1. call ``exit_worker``: the reply is an error, sent once the server has seen the worker go;
  2. check that no worker runs for the database, then time ``POST /v1/database/NAME/call/noop``: the server
     must spawn a fresh worker (``python -I -m spacetimedb.host.worker``), which confines itself (rlimits,
     Landlock, seccomp) and opens the database from disk, before the call runs; check that it did;
  3. time the same call again on the now running worker (``--warm-calls`` times, median).

Launch time = the cold call - the warm calls right after it. Also timed: ``PUT /v1/database/NAME`` of a new
database (the program validated in a throw-away worker, then the database created in its own worker), each
deleted again; and, for scale, a bare ``python -I`` and one that imports the worker's modules (run as the
server runs a worker: no environment, from ``/``; up to their last import, without the interpreter's teardown). The budget is 300 ms for the median launch, in wall
time as a client waits for it; the CPU times printed next to it show how much of that was waiting for a CPU
(on a busy machine, much of it). The worker's modules are imported once before anything is timed, so that
their byte-code caches exist, as in an installed package (a sandboxed worker cannot write them).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from keynote_systems import (
    CLOCK_TICKS,
    ROOT,
    children_of,
    command_line,
    http,
    read_line_containing,
    start_group,
    stop_group,
)

BUDGET_MS = 300.0
DATABASE = "launch"

TINY_MODULE = b'''"""No tables; one reducer to call, and one that stops this database's worker."""

import os

from spacetimedb import ReducerContext, reducer


@reducer
def noop(ctx: ReducerContext) -> None:
    pass


@reducer
def exit_worker(ctx: ReducerContext) -> None:
    os._exit(0)  # status 0: the server takes it as a clean stop and launches a new worker on the next call
'''


class CallFailed(RuntimeError):
    """A reducer call answered with an HTTP error (expected only from ``exit_worker``)."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:300]}")


class Server:
    """Our server on a free port and a temporary data directory, with one identity to publish and call as."""

    def __init__(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="worker-launch-")
        self.process: subprocess.Popen[bytes] | None = None
        self.base = ""
        self.token = ""
        self.isolation = "not reported"

    def start(self) -> None:
        log = open(Path(self.tmp) / "server.log", "wb")  # noqa: SIM115 - the child keeps writing to it
        try:
            self.process = start_group(
                [
                    sys.executable,
                    "-m",
                    "spacetimedb.server",
                    "--listen-addr",
                    "127.0.0.1:0",
                    "--data-dir",
                    str(Path(self.tmp) / "data"),
                ],
                bufsize=0,  # unbuffered: a line already read into a buffer would be invisible to select()
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=ROOT,
            )
        finally:
            log.close()
        line = read_line_containing(self.process.stdout, "listening on http://", 60, "the server")
        self.base = line.split("listening on ", 1)[1].strip()
        try:  # printed right after, when the server decided how to isolate modules
            self.isolation = read_line_containing(self.process.stdout, "module sandbox", 5, "the server")
        except (TimeoutError, RuntimeError):
            pass
        self.token = json.loads(http("POST", f"{self.base}/v1/identity"))["token"]

    def stop(self) -> None:
        stop_group(self.process)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def headers(self, content_type: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"}
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    def publish(self, name: str) -> str:
        """Publish the tiny module as a new database; its identity (hex)."""
        answer = json.loads(http("PUT", f"{self.base}/v1/database/{name}", TINY_MODULE, self.headers()))
        if "Success" not in answer:
            raise RuntimeError(f"publishing {name} failed: {answer!r:.300}")
        return answer["Success"]["database_identity"]

    def delete(self, name: str) -> None:
        http("DELETE", f"{self.base}/v1/database/{name}", None, self.headers())

    def call(self, reducer: str) -> None:
        try:
            self._call(reducer)
        except urllib.error.HTTPError as error:
            raise CallFailed(error.code, error.read().decode(errors="replace")) from None

    def _call(self, reducer: str) -> None:
        http(
            "POST",
            f"{self.base}/v1/database/{DATABASE}/call/{reducer}",
            b"[]",
            self.headers("application/json"),
        )

    def worker_of(self, identity: str) -> int | None:
        """The pid of the worker running this database, if one runs (its command line names its directory)."""
        assert self.process is not None
        for pid in children_of({self.process.pid}) - {self.process.pid}:
            arguments = command_line(pid)
            directory = (
                arguments[arguments.index("--database-dir") + 1] if "--database-dir" in arguments[:-1] else ""
            )
            if Path(directory).name == identity:
                return pid
        return None


def timed_ms(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


def stop_worker(server: Server, identity: str) -> None:
    try:
        server.call("exit_worker")
    except CallFailed:
        pass  # expected: the call's worker is gone
    else:
        raise RuntimeError("exit_worker returned normally: its worker did not stop")
    if server.worker_of(identity) is not None:
        raise RuntimeError("a worker still runs the database after exit_worker (relaunched eagerly?)")


def process_cpu_ms(pid: int) -> float:
    """User + system CPU time a process has used so far (resolution: one clock tick, usually 10 ms)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return 1000 * (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def measure_launches(
    server: Server, identity: str, launches: int, warm_calls: int
) -> tuple[list[float], list[float], list[float]]:
    """(launch times, CPU time of each new worker, warm call times), in ms. A launch's time is the cold call
    minus the median warm call after it; its CPU time is what the new worker used up to the end of the cold
    call (so the wall time's share of waiting for a CPU on a busy machine shows)."""
    launch_ms, launch_cpu_ms, warm_ms = [], [], []
    for _ in range(launches):
        before = server.worker_of(identity)
        stop_worker(server, identity)
        cold = timed_ms(lambda: server.call("noop"))
        after = server.worker_of(identity)
        if after is None or after == before:
            raise RuntimeError("the call after exit_worker did not launch a new worker")
        launch_cpu_ms.append(process_cpu_ms(after))
        warm = [timed_ms(lambda: server.call("noop")) for _ in range(warm_calls)]
        warm_ms.extend(warm)
        launch_ms.append(cold - statistics.median(warm))
    return launch_ms, launch_cpu_ms, warm_ms


def measure_publishes(server: Server, publishes: int) -> list[float]:
    """Time of publishing a new database (each deleted again, so workers do not pile up); one unmeasured first."""
    times = []
    for index in range(publishes + 1):
        name = f"fresh-{index}"
        elapsed = timed_ms(lambda name=name: server.publish(name))
        server.delete(name)
        if index:
            times.append(elapsed)
    return times


def interpreter_start_ms(imports: str, runs: int) -> tuple[float, float]:
    """Median wall and CPU time of ``python -I -X utf8`` importing ``imports``, started as the server starts a
    worker. It leaves with ``os._exit``: tearing the interpreter down is no part of a launch."""
    command = [sys.executable, "-I", "-X", "utf8", "-c", f"import {imports}; import os; os._exit(0)"]
    wall, cpu = [], []
    for _ in range(runs):
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(command, env={}, cwd="/", check=True, stdout=subprocess.DEVNULL)
        wall.append((time.perf_counter() - started) * 1000)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        used = children.ru_utime - children_before.ru_utime + children.ru_stime - children_before.ru_stime
        cpu.append(1000 * used)
    return statistics.median(wall), statistics.median(cpu)


def nearest_rank(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def spread(values: list[float]) -> str:
    return (
        f"min {min(values):.0f} ms, median {statistics.median(values):.0f} ms, "
        f"p90 {nearest_rank(values, 0.9):.0f} ms, max {max(values):.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--launches", type=int, default=20, help="worker launches to time")
    parser.add_argument(
        "--warm-calls", type=int, default=3, help="calls on the running worker after each launch"
    )
    parser.add_argument("--publishes", type=int, default=10, help="publishes of a new database to time")
    parser.add_argument("--interpreter-runs", type=int, default=10, help="bare interpreter starts to time")
    args = parser.parse_args()
    if args.launches < 1 or args.warm_calls < 1 or args.publishes < 1 or args.interpreter_runs < 1:
        parser.error("every count must be at least 1")

    # A worker cannot write byte-code caches (Landlock leaves it read-only outside its database), so it would
    # compile every module edited since the last import that could: import them once here, as an installed
    # package has its caches (the child's -I ignores a PYTHONDONTWRITEBYTECODE this process may have).
    interpreter_start_ms("spacetimedb.host.worker", 1)
    load_before = os.getloadavg()
    server = Server()
    try:
        server.start()
        print(server.isolation)
        print(f"load average before: {' '.join(f'{x:.2f}' for x in load_before)}; {os.cpu_count()} CPUs\n")
        identity = server.publish(DATABASE)
        server.call("noop")
        launch_ms, launch_cpu_ms, warm_ms = measure_launches(server, identity, args.launches, args.warm_calls)
        publish_ms = measure_publishes(server, args.publishes)
    finally:
        server.stop()
    # sys is always loaded already: the bare interpreter
    bare, bare_cpu = interpreter_start_ms("sys", args.interpreter_runs)
    imports, imports_cpu = interpreter_start_ms("spacetimedb.host.worker", args.interpreter_runs)

    print(f"warm call (POST .../call/noop on a running worker): median {statistics.median(warm_ms):.1f} ms")
    print(f"worker launch (cold call - warm call), {len(launch_ms)} launches: {spread(launch_ms)}")
    print(
        f"  CPU time of the new worker by the end of that call: median {statistics.median(launch_cpu_ms):.0f} ms"
    )
    print(
        f"publish of a new database (PUT: validation worker + creation), {len(publish_ms)}: {spread(publish_ms)}"
    )
    print(
        f"for scale, started as a worker is (up to its last import): a bare interpreter median {bare:.0f} ms "
        f"({bare_cpu:.0f} ms CPU); one importing the worker's modules median {imports:.0f} ms ({imports_cpu:.0f} ms CPU)"
    )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    median = statistics.median(launch_ms)
    print(
        f"\nworker launch: median {median:.0f} ms (budget {BUDGET_MS:.0f} ms: {'met' if median <= BUDGET_MS else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
