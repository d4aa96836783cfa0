"""A database worker process: ``python -I -m spacetimedb.host.worker --channel-fd N --deadline-fd M ...``.

The server spawns one per running database (and a throw-away one to validate a program before it is
published), always fresh through exec, with a scrubbed environment. Before it reads a byte from the server the
worker confines itself (``spacetimedb.sandbox``): resource limits, no capabilities, Landlock (read-write on its
own database directory only, read-only on the Python installation and the project), seccomp (no sockets, no
exec, no new processes, no signals to others). Once its own threads run it forbids new ones, then loads the
module. Everything about its database happens here: the datastore, commitlog and snapshots, the module, the
scheduler, subscriptions, the module log, and encoding every message its clients get.

The first message says what to do: ``CreateDatabase``, ``OpenDatabase`` (answered with ``Ready`` or
``LaunchFailed``), or ``ValidateProgram`` (answered with ``Validated`` or ``LaunchFailed``, then exit). A worker
whose channel closes shuts its database down cleanly and exits; one whose machinery fails reports ``Panicked``
and exits at once (its supervisor restarts the database from disk).
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import faulthandler
import functools
import gc
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from spacetimedb import sandbox
from spacetimedb.db import DbOptions
from spacetimedb.module import (
    HttpRequest,
    HttpResponse,
    LoadedModule,
    MigrationPlan,
    ProgramKind,
    detect_kind,
    load_module,
    plan_migration,
)
from spacetimedb.module import log as module_log_api
from spacetimedb.module_log import read_log_dir
from spacetimedb.protocol import seam
from spacetimedb.protocol.deadline import DeadlineSlot

from .backup import restore_database, serve_backup
from .channel import Channel, Outbox
from .clients import ClientHub
from .database import Database, DatabaseOptions, LaunchError
from .foreign import js as js_engine
from .module_host import HostOptions, MigrationRefusedError, ModuleHost, run_user_code, stored_program
from .time_travel import serve_past_query, serve_transaction_list
from .watchdog import CallClock, register

# a worker stops reading its channel while this many jobs wait, so the server's writes back up and it stops
# reading the clients' sockets
MAX_QUEUED_JOBS = 4096
SPACE_POLL_SECONDS = 1.0
# a read-only database writes again once this much is free (or a tenth of a small file system)
SPACE_TO_RESUME = 64 << 20
EXIT_PANIC = 70
_PR_SET_PDEATHSIG = 1


def main(argv: list[str] | None = None) -> NoReturn:
    args = _parse(argv)
    _die_with_parent(args.parent_pid)
    faulthandler.enable()  # a crash prints the Python stack to stderr, which the supervisor keeps
    # (from a signal handler in C: it dumps even a thread that holds the GIL and never gives it up)
    faulthandler.register(seam.STACK_DUMP_SIGNAL, all_threads=True)
    # a database holds every row in memory: the default thresholds would walk them all every few calls
    # (the server process does the same, see server.app.tune_gc)
    gc.set_threshold(50_000, 20, 100)
    sys.setswitchinterval(0.02)
    policy = sandbox.SandboxPolicy(
        writable=(args.database_dir,) if args.database_dir is not None else (),
        readable=sandbox.default_readable_paths(),
        memory_bytes=None,  # capped by ``Lockdown`` once the worker knows whether V8 runs in it
        max_open_files=args.max_open_files,
        landlock=args.landlock,
        seccomp=args.seccomp,
    )
    lockdown = Lockdown(args.memory_bytes or None, args.seccomp)
    sandbox.confine(policy)
    module_log_api.route_python_logging()
    channel = Channel(socket.socket(fileno=args.channel_fd))
    slot = DeadlineSlot.from_fd(args.deadline_fd)
    received = channel.receive()
    if not received:
        os._exit(0)
    first, rest = received[0], received[1:]
    if not isinstance(first, (seam.ValidateProgram, seam.CreateDatabase, seam.OpenDatabase)):
        lockdown.limit_memory(runs_v8=False)  # no module code runs in this worker
    match first:
        case seam.ValidateProgram():
            _validate(first, channel, slot, lockdown)
        case seam.ReadLog():
            _read_log(first, args.database_dir, channel)
        case seam.BackupDatabase():
            serve_backup(first, args.database_dir, channel)
        case seam.RestoreDatabase():
            restore_database(first, args.database_dir, channel)
        case seam.QueryPast():
            serve_past_query(first, args.database_dir, channel)
        case seam.ListTransactions():
            serve_transaction_list(first, args.database_dir, channel)
        case seam.CreateDatabase() | seam.OpenDatabase():
            _run_database(first, rest, args.database_dir, channel, slot, lockdown)
    channel.send(seam.LaunchFailed(f"unexpected first message {type(first).__name__}"))
    os._exit(0)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m spacetimedb.host.worker")
    parser.add_argument("--channel-fd", type=int, required=True)
    parser.add_argument("--deadline-fd", type=int, required=True)
    parser.add_argument("--database-dir", type=Path, default=None)
    parser.add_argument("--memory-bytes", type=int, default=0)
    parser.add_argument("--max-open-files", type=int, default=256)
    parser.add_argument("--parent-pid", type=int, default=0)
    parser.add_argument("--no-landlock", dest="landlock", action="store_false")
    parser.add_argument("--no-seccomp", dest="seccomp", action="store_false")
    return parser.parse_args(argv)


def _die_with_parent(parent_pid: int) -> None:
    """Be killed when the server dies, even while stuck in module code (a stopped server cannot kill us)."""
    if not parent_pid or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # it died before we asked
        os._exit(0)


class Lockdown:
    """What a worker does once it knows the programs it will run, before any module code: make the V8 isolates
    a JS program needs (each starts a thread), cap its memory, and forbid new threads (``seccomp``).

    The memory cap is the address space (RLIMIT_AS), except where V8 runs: V8 reserves far more address space
    than any cap allows (never backed), so such a worker caps its data segment (RLIMIT_DATA), which holds every
    object and buffer V8 makes, at what the prepared isolates already reserved plus the memory limit; its JS
    module cannot map memory any other way, and each isolate also has its own V8 heap limit.
    """

    def __init__(self, memory_bytes: int | None, seccomp: bool) -> None:
        self.memory_bytes = memory_bytes
        self.seccomp = seccomp
        self.status = os.open("/proc/self/status", os.O_RDONLY | os.O_CLOEXEC)  # before Landlock hides /proc

    def __call__(self, programs: tuple[bytes, ...]) -> None:
        runs_v8 = any(detect_kind(program) is ProgramKind.JS for program in programs)
        if runs_v8:
            js_engine.POOL.heap_limit_bytes = js_engine.heap_limit_for(self.memory_bytes)
            js_engine.POOL.prepare()
        self.limit_memory(runs_v8)
        if self.seccomp:
            js_engine.POOL.seal()
            sandbox.forbid_new_threads()

    def limit_memory(self, runs_v8: bool) -> None:
        if self.memory_bytes is None:
            return
        if runs_v8:
            # each isolate reserves writable memory it has not touched (~180 MiB); the cap is on top of that
            sandbox.limit_memory(data_segment_bytes(self.status) + self.memory_bytes, address_space=False)
        else:
            sandbox.limit_memory(self.memory_bytes)


def data_segment_bytes(status: int) -> int:
    """This process's data segment (VmData: heap and private writable mappings), as RLIMIT_DATA counts it;
    ``status`` is /proc/self/status, opened before Landlock hid /proc (reading it again gives fresh values)."""
    for line in os.pread(status, 1 << 16, 0).decode("ascii", "replace").splitlines():
        if line.startswith("VmData:"):
            return int(line.split()[1]) * 1024
    raise LaunchError("/proc/self/status has no VmData line")


def _host_options(settings: seam.HostSettings) -> HostOptions:
    return HostOptions(
        reducer_budget_seconds=settings.reducer_budget_micros / 1e6,
        load_budget_seconds=settings.load_budget_micros / 1e6,
        query_row_limit=settings.query_row_limit or None,
        query_byte_limit=settings.query_byte_limit or None,
        hard_grace_seconds=settings.hard_grace_micros / 1e6,
    )


def _db_options(settings: seam.HostSettings) -> DbOptions:
    return DbOptions(max_segment_size=settings.max_segment_size, snapshot_interval=settings.snapshot_interval)


def migration_summary(plan: MigrationPlan) -> seam.MigrationSummary:
    return seam.MigrationSummary(
        plan.is_automatic,
        plan.disconnects_clients,
        plan.pretty(),
        plan.pretty(color=True),
        tuple(plan.incompatible),
    )


# ---- validating a program ---------------------------------------------------------------------------------------


def _validate(
    request: seam.ValidateProgram, channel: Channel, slot: DeadlineSlot, lockdown: Lockdown
) -> NoReturn:
    options = _host_options(request.settings)
    clock = CallClock(slot, options.hard_grace_seconds)
    register(clock)  # starts the watchdog thread while threads are still allowed
    lockdown((request.program,) if request.current is None else (request.program, request.current))
    module_log_api.set_sink(_discard_log)

    def load(program: bytes, which: str) -> LoadedModule:
        _starting(channel, f"loading the {which} module", options.load_budget_seconds)
        status, message, loaded = run_user_code(
            clock,
            options.load_budget_seconds,
            f"loading the {which} module",
            lambda: load_module(program),
            _discard_error,
        )
        if loaded is None:
            raise LaunchError(message or status)
        return loaded

    try:
        new = load(request.program, "new")
        migration = None
        if request.current is not None:
            try:
                current = load(request.current, "current")
            except LaunchError as exc:
                raise LaunchError(f"the database's current module does not load any more: {exc}") from None
            migration = migration_summary(plan_migration(current.module_def, new.module_def))
        channel.send(seam.Validated(new.program_hash, migration))
    except LaunchError as exc:
        channel.send(seam.LaunchFailed(str(exc)))
    os._exit(0)


def _discard_log(level: str, message: str, filename: str | None, line: int | None) -> None:
    pass


def _discard_error(level: str, message: str, function: str | None, exc: BaseException | None) -> None:
    pass


def _read_log(request: seam.ReadLog, directory: Path | None, channel: Channel) -> NoReturn:
    lines = read_log_dir(directory / "module_logs", request.lines) if directory is not None else []
    channel.send(seam.LogContents(tuple(lines)))
    os._exit(0)


# ---- running a database ------------------------------------------------------------------------------------------


def _run_database(
    first: seam.CreateDatabase | seam.OpenDatabase,
    rest: list[Any],
    directory: Path | None,
    channel: Channel,
    slot: DeadlineSlot,
    lockdown: Lockdown,
) -> NoReturn:
    settings = first.settings
    options = DatabaseOptions(
        host=_host_options(settings),
        db=_db_options(settings),
        deadline=slot,
        on_panic=functools.partial(_panicked, channel),
        before_module=lockdown,
        starting=functools.partial(_starting, channel),
        read_only=first.read_only if isinstance(first, seam.OpenDatabase) else None,
    )
    try:
        if isinstance(first, seam.CreateDatabase):
            database = Database.create(directory, first.database, first.owner, first.program, options)
        else:
            if directory is None:
                raise LaunchError("an in-memory database cannot be reopened")
            database = Database.open(directory, first.database, options, first.replacement, first.notes)
    except (LaunchError, MigrationRefusedError) as exc:
        channel.send(seam.LaunchFailed(str(exc)))
        os._exit(0)
    Worker(database, channel, slot).serve(rest)


def _starting(channel: Channel, what: str, budget_seconds: float) -> None:
    channel.send(seam.Starting(what, int(budget_seconds * 1e6)))


def _panicked(channel: Channel, host: ModuleHost, exc: BaseException) -> None:
    channel.send(seam.Panicked(f"{type(exc).__name__}: {exc}"[:1000], disk_full(exc)))
    os._exit(EXIT_PANIC)


def disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or what caused it) says the disk or the quota is full."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


class Worker:
    """Feeds the server's requests to the host thread, and reports durable offsets."""

    def __init__(self, database: Database, channel: Channel, slot: DeadlineSlot) -> None:
        self.database = database
        self.host = database.host
        self.channel = channel
        self.outbox = Outbox(channel)
        self.hub = ClientHub(database, self.outbox)
        self._host_thread_id = self.host.thread_id
        self._durable_reported = -1
        self._durable_latest = -1
        self._durable_lock = threading.Lock()
        self._ready = False  # nothing but Ready may precede Ready
        self._room = threading.Event()
        hub = self.hub
        # what serves each message, on the host thread
        self._serve: dict[type, Callable[[Any], None]] = {
            seam.ClientFrame: hub.frame,
            seam.ConnectClient: hub.connect,
            seam.DisconnectClient: hub.disconnect,
            seam.CallReducerHttp: hub.call_http,
            seam.CallHttpHandler: hub.call_handler,
            seam.RunSql: hub.sql,
            seam.RunSqlTyped: hub.sql_typed,
            seam.DescribeSql: hub.describe_sql,
            seam.GetSchema: hub.schema,
            seam.TailLog: hub.tail_log,
            seam.FollowLog: hub.follow_log,
            seam.GetStats: hub.stats,
            seam.GetProgram: self._program,
            seam.GetMetrics: self._metrics,
            seam.UpdateModule: self._update,
        }
        self.host.add_batch_listener(self._batch_done)
        database.procedures.send_http = self._send_http
        database.db.add_durable_listener(self._durable)
        durable = database.db.durable_offset()
        with database.db.read_tx() as tx:
            stored = stored_program(tx)
        assert stored is not None
        self._durable_reported = -1 if durable is None else durable
        channel.send(seam.Ready(stored[1], stored[3], durable))
        self._ready = True
        self._report_durable()

    # -- the main thread -------------------------------------------------------------------------------------------

    def serve(self, pending: list[Any]) -> NoReturn:
        messages: list[Any] | None = pending
        space_checked = time.monotonic()
        while messages is not None:
            if self.host.read_only is not None and time.monotonic() - space_checked >= SPACE_POLL_SECONDS:
                space_checked = time.monotonic()
                self._check_space()
            for message in messages:
                match message:
                    case seam.Shutdown():
                        self._exit()
                    case seam.Cancel():
                        self.hub.cancel(message.request)
                        continue
                    case seam.HttpAnswer():
                        self._http_answer(message)
                        continue
                    case seam.DisconnectClient():
                        self.hub.client_gone(message.client)
                self._submit(message)
            self._wait_for_room()
            # a read-only database looks for free space again every second, between messages
            messages = self.channel.receive(SPACE_POLL_SECONDS if self.host.read_only is not None else None)
        self._exit()  # the server closed the channel (it stopped, or it lets this database go)

    def _send_http(self, fetch: int, request: HttpRequest) -> None:
        """A procedure's HTTP request, for the server to perform (from a procedure thread)."""
        names = tuple(name for name, _ in request.headers)
        values = tuple(value for _, value in request.headers)
        timeout = int(request.timeout * 1e6) if request.timeout is not None else 0
        self.channel.send(
            seam.HttpFetch(fetch, request.method, request.url, names, values, request.body, timeout)
        )

    def _http_answer(self, answer: seam.HttpAnswer) -> None:
        if len(answer.header_names) != len(answer.header_values):
            raise seam.SeamViolation("an HTTP answer whose header names and values do not pair up")
        response = None
        if answer.error is None:
            headers = tuple(zip(answer.header_names, answer.header_values, strict=True))
            response = HttpResponse(answer.status, headers, answer.body)
        self.database.procedures.http_answer(answer.fetch, response, answer.error)

    def _submit(self, message: Any) -> None:
        serve = self._serve.get(type(message))
        if serve is None:
            raise seam.SeamViolation(f"unexpected message {type(message).__name__}")
        self.host.submit(functools.partial(serve, message))

    def _check_space(self) -> None:
        if self.database.db.path is not None and enough_space(self.database.db.path):
            self.host.submit(self._writable)

    def _writable(self) -> None:
        if self.host.read_only is not None:
            self.host.read_only = None
            self.database.module_log.system(
                "Info", "there is space on the disk again: the database writes again"
            )
            self.outbox.send(seam.Writable())

    def _wait_for_room(self) -> None:
        while self.host.queued() > MAX_QUEUED_JOBS:
            self._room.clear()
            self._room.wait(0.1)

    def _exit(self) -> NoReturn:
        self.database.shutdown()
        self._report_durable()
        self.outbox.flush()
        os._exit(0)

    # -- the host thread ---------------------------------------------------------------------------------------------

    def _batch_done(self) -> None:
        self._room.set()
        if self._durable_latest > self._durable_reported:
            self._report_durable()
        self.outbox.flush()

    def _program(self, request: seam.GetProgram) -> None:
        with self.database.db.read_tx() as tx:
            stored = stored_program(tx)
        assert stored is not None
        self.outbox.send(seam.ProgramAnswer(request.request, stored[4]))

    def _metrics(self, request: seam.GetMetrics) -> None:
        db = self.database.db
        snapshot = db.newest_snapshot()
        age = None if snapshot is None else max(0, int((time.time() - snapshot[1]) * 1e6))
        metrics = seam.DatabaseMetrics(
            self.host.reducer_metrics.report(),
            db.commitlog_bytes(),
            None if snapshot is None else snapshot[0],
            age,
        )
        self.outbox.send(seam.MetricsAnswer(request.request, metrics))

    def _update(self, request: seam.UpdateModule) -> None:
        try:
            plan = self.database.update(request.program)
        except MigrationRefusedError as exc:
            answer = seam.UpdateDone(request.request, str(exc), b"", migration_summary(exc.plan))
        except LaunchError as exc:
            answer = seam.UpdateDone(request.request, str(exc), b"", None)
        else:
            answer = seam.UpdateDone(
                request.request, None, self.host.loaded.program_hash, migration_summary(plan)
            )
        self.outbox.send(answer)

    # -- durability ------------------------------------------------------------------------------------------------

    def _durable(self, offset: int) -> None:
        """A new durable offset: the durability thread reports it at once (it is already batched by fsync); a
        commit on the host thread (an in-memory database) is reported at the end of its batch."""
        self._durable_latest = max(self._durable_latest, offset)
        if self._ready and threading.get_ident() != self._host_thread_id:
            self._report_durable()

    def _report_durable(self) -> None:
        """Send the latest durable offset if it is news; strictly increasing, whichever thread reports it
        (the server takes an offset that does not advance for a broken worker)."""
        with self._durable_lock:
            offset = self._durable_latest
            if offset > self._durable_reported:
                self._durable_reported = offset
                self.channel.send(seam.Durable(offset))


def enough_space(directory: Path) -> bool:
    """Whether the file system of ``directory`` has room to write again."""
    try:
        stats = os.statvfs(directory)
    except OSError:
        return False
    free, total = stats.f_bavail * stats.f_frsize, stats.f_blocks * stats.f_frsize
    return free >= min(SPACE_TO_RESUME, total // 10)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except seam.SeamViolation as violation:
        sys.stderr.write(f"worker: the server sent an invalid message: {violation}\n")
        os._exit(2)
