"""The systems under test in the keynote benchmark, each started and stopped by the benchmark itself.

  OurServer        ``python -m spacetimedb.server`` on a free loopback port and a temporary data directory;
                   the keynote module published over HTTP (as one database, or as several: ``keynote``,
                   ``keynote-2``, ...), driven over WebSocket. Each database runs in its own worker process,
                   a child of the server.
  PostgresCluster  a throw-away cluster (initdb + pg_ctl) in a temporary directory on a free loopback port,
                   run as an unprivileged user when we are root (initdb refuses root).
  PeerServer       bench/keynote_peer.py (Starlette + uvicorn) on PostgreSQL or SQLite, driven over HTTP.

Every child runs in its own process group (PostgreSQL daemonizes, so it is stopped with pg_ctl and, failing
that, by its postmaster pid); ``stop()`` is safe to call twice and after a failed start.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
KEYNOTE_MODULE = ROOT / "examples" / "keynote" / "keynote_module.py"
DATABASE_NAME = "keynote"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Target:
    """Where and how the load generator talks to a system."""

    kind: str  # "ws" or "http"
    host: str
    port: int
    path: str
    token: str = ""


# ---- processes ------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_group(command: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """A child in its own process group, so that stopping it also stops whatever it started."""
    return subprocess.Popen(command, start_new_session=True, **kwargs)


def stop_group(process: subprocess.Popen[bytes] | None, grace: float = 15.0) -> None:
    if process is None or process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def read_line_containing(stream: Any, needle: str, timeout: float, what: str) -> str:
    """Read lines from a child's pipe until one contains ``needle``."""
    deadline = time.monotonic() + timeout
    selector = selectors.DefaultSelector()
    selector.register(stream, selectors.EVENT_READ)
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                raise TimeoutError(f"{what}: no line with {needle!r} within {timeout:g}s")
            line = stream.readline().decode(errors="replace")
            if not line:
                raise RuntimeError(f"{what}: the process ended before printing {needle!r}")
            if needle in line:
                return line.strip()
    finally:
        selector.close()


def children_of(pids: set[int]) -> set[int]:
    """``pids`` and all their descendants (from /proc)."""
    parents: dict[int, list[int]] = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.split("/")[2]))
    found = set(pids)
    frontier = list(pids)
    while frontier:
        for child in parents.get(frontier.pop(), []):
            if child not in found:
                found.add(child)
                frontier.append(child)
    return found


def cpu_by_process(pids: set[int]) -> dict[int, float]:
    """User + system CPU seconds of each of these processes and their descendants (threads included).

    Descendants are found by parent pid, so our server's database workers count although each runs in its
    own session. A process that has ended is not counted any more (its time moves to its parent's
    ``cutime``, which we do not read): callers compare processes that live through the measured window."""
    out = {}
    for pid in children_of(pids):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        out[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
    return out


def cpu_seconds(pids: set[int]) -> float:
    """User + system CPU time of these processes and their descendants (threads included)."""
    return sum(cpu_by_process(pids).values())


def command_line(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / CLOCK_TICKS, sum(values) / CLOCK_TICKS


# ---- HTTP helpers ------------------------------------------------------------------------------------------------


def http(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 120.0,
) -> bytes:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read()


def wait_http(url: str, timeout: float, what: str, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            http("GET", url, timeout=5)
            return
        except OSError as exc:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"{what} exited with status {process.returncode}") from exc
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} did not answer {url} within {timeout:g}s: {exc}") from exc
            time.sleep(0.1)


# ---- our server --------------------------------------------------------------------------------------------------


def database_names(count: int) -> list[str]:
    """``keynote``, ``keynote-2``, ``keynote-3``, ...: the first is the one the single-database cases use."""
    return [DATABASE_NAME] + [f"{DATABASE_NAME}-{index}" for index in range(2, count + 1)]


class OurServer:
    name = "ours"

    def __init__(self, python: str = sys.executable, databases: int = 1) -> None:
        self.python = python
        self.databases = database_names(databases)
        self.identities: dict[str, str] = {}  # database name -> identity (hex), which names its directory
        self.tmp: str | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.base = ""
        self.token = ""
        self.port = 0

    def start(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="keynote-ours-")
        log = open(Path(self.tmp) / "server.log", "wb")  # noqa: SIM115 - the child keeps writing to it
        try:
            self.process = start_group(
                [
                    self.python,
                    "-m",
                    "spacetimedb.server",
                    "--listen-addr",
                    "127.0.0.1:0",
                    "--data-dir",
                    str(Path(self.tmp) / "data"),
                ],
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=ROOT,
            )
        finally:
            log.close()
        line = read_line_containing(self.process.stdout, "listening on http://", 60, "our server")
        self.base = line.split("listening on ", 1)[1].strip()
        self.port = int(self.base.rsplit(":", 1)[1])
        self.token = json.loads(http("POST", f"{self.base}/v1/identity"))["token"]
        for database in self.databases:
            published = json.loads(
                http("PUT", f"{self.base}/v1/database/{database}", KEYNOTE_MODULE.read_bytes(), self._auth())
            )
            if "Success" not in published:
                raise RuntimeError(f"publishing the keynote module as {database} failed: {published!r:.300}")
            self.identities[database] = published["Success"]["database_identity"]

    def _auth(self, content_type: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"}
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    def seed(self, accounts: int, balance: int, database: str = DATABASE_NAME) -> None:
        # answered once the seeding transaction is durable
        http(
            "POST",
            f"{self.base}/v1/database/{database}/call/seed",
            json.dumps([accounts, balance]).encode(),
            self._auth("application/json"),
            timeout=300,
        )

    def total(self, database: str = DATABASE_NAME) -> dict[str, int]:
        body = http(
            "POST",
            f"{self.base}/v1/database/{database}/sql?confirmed=true",
            b"SELECT * FROM accounts",
            self._auth("text/plain"),
            timeout=300,
        )
        rows = json.loads(body)[0]["rows"]
        return {"count": len(rows), "sum": sum(int(row[1]) for row in rows)}

    def target(self, database: str = DATABASE_NAME) -> Target:
        # confirmed=true is the v2/v3 default; spelled out because durable acknowledgement is the workload
        return Target(
            "ws",
            "127.0.0.1",
            self.port,
            f"/v1/database/{database}/subscribe?compression=None&confirmed=true",
            self.token,
        )

    def pids(self) -> set[int]:
        return {self.process.pid} if self.process is not None else set()

    def process_labels(self) -> dict[int, str]:
        """Which process is which: ``server`` and ``worker NAME`` per running database worker (the worker's
        command line names its database directory, which is named by the database's identity)."""
        if self.process is None:
            return {}
        order = {identity: index for index, identity in enumerate(self.identities.values())}
        name_of = {identity: name for name, identity in self.identities.items()}
        workers = []
        for pid in children_of(self.pids()) - {self.process.pid}:
            arguments = command_line(pid)
            if "--database-dir" in arguments[:-1]:
                identity = Path(arguments[arguments.index("--database-dir") + 1]).name
                workers.append((order.get(identity, len(order)), pid, name_of.get(identity, identity[:16])))
        # in the order the databases were published
        return {self.process.pid: "server"} | {pid: f"worker {name}" for _, pid, name in sorted(workers)}

    def stop(self) -> None:
        stop_group(self.process)
        self.process = None
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None


# ---- PostgreSQL --------------------------------------------------------------------------------------------------


def postgres_bin_dir(install: bool = True) -> Path:
    """The directory of initdb/pg_ctl/postgres; installs Debian's postgresql package when they are missing."""
    found = _find_postgres_bin()
    if found is not None:
        return found
    if not install:
        raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found")
    if os.geteuid() != 0:
        raise RuntimeError(
            "PostgreSQL server binaries (initdb, pg_ctl) not found, and installing them needs root: "
            "run `apt-get install -y postgresql`"
        )
    print(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: installing Debian's `postgresql` package "
        "(apt-get update && apt-get install -y postgresql) ...",
        flush=True,
    )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-q", "postgresql"], check=True, env=env)
    found = _find_postgres_bin()
    if found is None:
        raise RuntimeError("apt-get installed postgresql, but initdb/pg_ctl are still not found")
    return found


def _find_postgres_bin() -> Path | None:
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(os.path.realpath(initdb)).parent
    return None


class PostgresCluster:
    """A temporary PostgreSQL cluster: fsync and synchronous_commit on (the defaults), serializable by default."""

    def __init__(self) -> None:
        self.bin: Path | None = None
        self.tmp: str | None = None
        self.port = 0
        self.user: str | None = None  # the OS user running postgres when we are root

    @property
    def data(self) -> Path:
        assert self.tmp is not None
        return Path(self.tmp) / "data"

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_user(self, command: list[str]) -> list[str]:
        return command if self.user is None else ["runuser", "-u", self.user, "--", *command]

    def start(self) -> None:
        self.bin = postgres_bin_dir()
        self.tmp = tempfile.mkdtemp(prefix="keynote-pg-")
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            self.user = _unprivileged_user()
            account = pwd.getpwnam(self.user)
            os.chown(self.tmp, account.pw_uid, account.pw_gid)
        self.port = free_port()
        subprocess.run(
            self._as_user(
                [
                    str(self.bin / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=self.tmp,
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# keynote benchmark\n"
                "listen_addresses = '127.0.0.1'\n"
                f"port = {self.port}\n"
                f"unix_socket_directories = '{self.tmp}'\n"
                "default_transaction_isolation = 'serializable'\n"
                "max_connections = 300\n"  # 64 per peer worker, plus the benchmark's own
                "fsync = on\nsynchronous_commit = on\n"  # the defaults, stated: every commit is durable
            )
        result = subprocess.run(
            self._as_user(
                [
                    str(self.bin / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-l",
                    str(Path(self.tmp) / "log"),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ]
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self.tmp,
            start_new_session=True,
        )
        if result.returncode != 0:
            log = Path(self.tmp) / "log"
            raise RuntimeError(
                f"pg_ctl start failed: {result.stdout.decode()[-500:]}\n"
                f"{log.read_text()[-1000:] if log.exists() else ''}"
            )

    def version(self) -> str:
        assert self.bin is not None
        return subprocess.run(
            [str(self.bin / "postgres"), "--version"], capture_output=True, text=True
        ).stdout.strip()

    def pids(self) -> set[int]:
        pid_file = self.data / "postmaster.pid" if self.tmp else None
        if pid_file is None or not pid_file.exists():
            return set()
        return {int(pid_file.read_text().split("\n", 1)[0])}

    def stop(self) -> None:
        if self.tmp is None:
            return
        postmaster = self.pids()
        if self.bin is not None and postmaster:
            subprocess.run(
                self._as_user(
                    [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop"]
                ),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=self.tmp,
            )
            for pid in postmaster:  # pg_ctl failed or timed out: make sure nothing is left behind
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp = None


def _unprivileged_user() -> str:
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError(
        "running as root, but there is neither a `postgres` nor a `nobody` user to run PostgreSQL"
    )


# ---- the Python web-stack peers --------------------------------------------------------------------------------


class PeerServer:
    """bench/keynote_peer.py on a listening socket we bind (and so know the port of) before it starts."""

    def __init__(self, backend: str, workers: int = 1, python: str = sys.executable) -> None:
        self.name = backend
        self.backend = backend
        self.workers = workers
        self.python = python
        self.postgres: PostgresCluster | None = None
        self.tmp: str | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.base = ""

    def start(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix=f"keynote-{self.backend}-")
        command = [
            self.python,
            str(BENCH / "keynote_peer.py"),
            "--backend",
            self.backend,
            "--workers",
            str(self.workers),
        ]
        if self.backend == "postgres":
            self.postgres = PostgresCluster()
            self.postgres.start()
            # "pool 64" is the whole stack's pool, shared out between the workers
            command += ["--dsn", self.postgres.dsn, "--pool-size", str(max(1, 64 // self.workers))]
        else:
            command += ["--sqlite-path", str(Path(self.tmp) / "bank.sqlite3")]
        listener = socket.socket()
        try:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1024)
            self.port = listener.getsockname()[1]
            self.base = f"http://127.0.0.1:{self.port}"
            log = open(Path(self.tmp) / "peer.log", "wb")  # noqa: SIM115 - the child keeps writing to it
            try:
                self.process = start_group(
                    [*command, "--fd", str(listener.fileno())],
                    pass_fds=(listener.fileno(),),
                    stdout=log,
                    stderr=log,
                )
            finally:
                log.close()
        finally:
            listener.close()  # the child has its own copy
        wait_http(f"{self.base}/total", 60, f"the {self.backend} peer", self.process)

    def log_tail(self) -> str:
        path = Path(self.tmp) / "peer.log" if self.tmp else None
        return path.read_text(errors="replace")[-2000:] if path and path.exists() else ""

    def seed(self, accounts: int, balance: int) -> None:
        http(
            "POST",
            f"{self.base}/seed",
            json.dumps([accounts, balance]).encode(),
            {"Content-Type": "application/json"},
            timeout=300,
        )

    def total(self) -> dict[str, int]:
        return json.loads(http("GET", f"{self.base}/total"))

    def target(self) -> Target:
        return Target("http", "127.0.0.1", self.port, "/transfer")

    def pids(self) -> set[int]:
        pids = {self.process.pid} if self.process is not None else set()
        return pids | (self.postgres.pids() if self.postgres is not None else set())

    def stop(self) -> None:
        try:
            stop_group(self.process)
            self.process = None
        finally:
            if self.postgres is not None:
                self.postgres.stop()
                self.postgres = None
            if self.tmp is not None:
                shutil.rmtree(self.tmp, ignore_errors=True)
                self.tmp = None
