"""One database as a worker process runs it: its ``RelationalDB``, module log and ``ModuleHost``.

``Database.create`` makes a new database from a program (tables, the stored program and ``init``, in one
transaction); ``Database.open`` opens an existing one and runs the program stored in it (or first migrates to a
replacement). Module code (its top-level code, ``init``) always runs on the host thread, under the reducer time
budget and the worker's hard deadline. ``before_module(programs)`` runs once every thread of the database is
started and before any module code, given the programs that may run: a worker makes what that program's engine needs
(V8 isolates), limits its memory and forbids new threads there.

A ``Database`` can also be built in a test process, where nothing is sandboxed.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spacetimedb.datastore import ST_ROW_LEVEL_SECURITY_ID, Datastore, MutTx, ReadTx, TableSchema
from spacetimedb.db import DbOptions, RelationalDB
from spacetimedb.module import (
    AuthCtx,
    HttpError,
    HttpRequest,
    LoadedModule,
    MigrationPlan,
    ModuleDef,
    ModuleRuntime,
    create_module_tables,
    load_module,
    plan_migration,
)
from spacetimedb.module_log import ModuleLog
from spacetimedb.protocol.deadline import DeadlineSlot
from spacetimedb.protocol.messages import CallStatus
from spacetimedb.sats import Identity, Timestamp

from . import foreign  # noqa: F401  # registers the engines of WASM (and JS) modules with load_module
from .errors import HostFailedError
from .module_host import (
    CallOutcome,
    HostOptions,
    MigrationRefusedError,
    ModuleHost,
    store_program,
    stored_program,
)
from .procedures import PROCEDURE_THREADS, ProcedureRequest, ProcedureRunner
from .watchdog import CallClock

PanicHandler = Callable[[ModuleHost, BaseException], None]


class LaunchError(Exception):
    """The database cannot run: its module does not load, ``init`` failed, or a migration was refused."""


@dataclass(frozen=True)
class DatabaseOptions:
    host: HostOptions = field(default_factory=HostOptions)
    db: DbOptions = field(default_factory=DbOptions)
    fsync: Callable[[int], None] | None = None  # replaces os.fdatasync (fault-injection tests)
    deadline: DeadlineSlot | None = None  # a worker's shared deadline page
    on_panic: PanicHandler | None = None
    before_module: Callable[[tuple[bytes, ...]], None] | None = None
    # told (what, budget in seconds) before module code runs while the database starts
    starting: Callable[[str, float], None] | None = None
    # why the database must not write (its disk was full), or None
    read_only: str | None = None


class Database:
    """A running database: call through ``host``; ``shutdown`` flushes and releases everything."""

    def __init__(
        self,
        identity: Identity,
        db: RelationalDB,
        module_log: ModuleLog,
        host: ModuleHost,
        procedures: ProcedureRunner,
    ) -> None:
        self.identity = identity
        self.db = db
        self.module_log = module_log
        self.host = host
        self.procedures = procedures
        self._starting: Callable[[str, float], None] | None = None
        host.start_scheduled_procedure = self._start_scheduled_procedure

    def _start_scheduled_procedure(self, name: str, args: bytes) -> None:
        """A scheduled procedure's call, as the database itself makes it; its failure is in the module log."""
        request = ProcedureRequest(
            name, args, False, self.identity, None, AuthCtx.internal(), done=lambda outcome: None
        )
        self.procedures.call(request)

    # -- creating and opening ------------------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: Path | None,
        identity: Identity,
        owner: Identity,
        program: bytes,
        options: DatabaseOptions | None = None,
    ) -> Database:
        """Create the database in ``path`` (None: in memory) with ``program``, running its ``init``.

        On any failure nothing is left in ``path`` and ``LaunchError`` says why. The directory itself stays: a
        sandboxed worker may write only beneath it, and could not make it again."""
        options = options or DatabaseOptions()
        if path is not None:
            _empty_directory(path)  # leftovers of a creation that was cut short
        database = cls._start(path, identity, owner, options, (program,))
        try:
            database.on_host_thread(lambda: database._initialize(owner, program))
        except BaseException:
            database.shutdown()
            if path is not None:
                _empty_directory(path)
            raise
        database._starting = None  # started: module code from now on is a running database's business
        return database

    @classmethod
    def open(
        cls,
        path: Path,
        identity: Identity,
        options: DatabaseOptions | None = None,
        replacement: bytes | None = None,
        notes: tuple[str, ...] = (),
    ) -> Database:
        """Open the database in ``path`` and run its stored program; with ``replacement``, run that program
        instead, which must declare the same tables (the stored one runs no code at all: it may be what keeps
        the database from starting). ``notes`` are log lines to append first."""
        options = options or DatabaseOptions()
        if not (path / "clog").is_dir():
            raise LaunchError(f"no database in {path}")
        db = RelationalDB.open(path, options.db, fsync=options.fsync)
        with db.read_tx() as tx:
            stored = stored_program(tx)
        if stored is None:
            db.close()
            raise LaunchError("the database has no module")
        programs = (stored[4],) if replacement is None else (stored[4], replacement)
        database = cls._start(path, identity, stored[1], options, programs, db)
        for line in notes:
            database.module_log.write_line(line)
        try:
            database.on_host_thread(lambda: database._load_stored(stored[4], replacement))
        except BaseException:
            database.shutdown()
            raise
        database._starting = None
        database.module_log.system("Info", "database host started")
        return database

    @classmethod
    def _start(
        cls,
        path: Path | None,
        identity: Identity,
        owner: Identity,
        options: DatabaseOptions,
        programs: tuple[bytes, ...],
        db: RelationalDB | None = None,
    ) -> Database:
        if db is None:
            db = (
                RelationalDB.in_memory()
                if path is None
                else RelationalDB.open(path, options.db, fsync=options.fsync)
            )
        try:
            module_log = ModuleLog(None if path is None else path / "module_logs")
            host = ModuleHost(
                identity, owner, db, None, module_log, options.host, options.on_panic, options.deadline
            )
            db.set_failure_handler(host.panic)
            host.read_only = options.read_only
            host.start_threads()
            procedures = ProcedureRunner(host, _no_http, _procedure_clocks(options))
            procedures.start()
        except BaseException:
            db.close()
            raise
        if options.before_module is not None:
            options.before_module(programs)
        database = cls(identity, db, module_log, host, procedures)
        database._starting = options.starting
        return database

    def on_host_thread(self, work: Callable[[], Any]) -> Any:
        """Run ``work`` as a job of the host thread and wait for it; its exception is raised here."""
        future: Future[Any] = Future()

        def job() -> CallOutcome:
            try:
                future.set_result(work())
            except BaseException as exc:
                future.set_exception(exc)
            return CallOutcome(CallStatus.COMMITTED, None, Timestamp.now())

        def failed(outcome: CallOutcome) -> None:
            if not future.done():  # the host failed before the job ran
                future.set_exception(HostFailedError(outcome.message or "the database host failed"))

        self.host.submit(job, failed)
        return future.result()

    # -- on the host thread ------------------------------------------------------------------------------------------

    def _announce(self, what: str, budget: float) -> None:
        if self._starting is not None:
            self._starting(what, budget)

    def load(self, program: bytes) -> LoadedModule:
        """Import ``program`` under the time budget (host thread); ``LaunchError`` says why it does not load."""
        self._announce("loading the module", self.host.options.load_budget_seconds)
        status, message, loaded = self.host.run_module_code(
            "loading the module", lambda: load_module(program)
        )
        if status != CallStatus.COMMITTED or loaded is None:
            raise LaunchError(message or "the module does not load")
        return loaded

    def _initialize(self, owner: Identity, program: bytes) -> None:
        """Create the tables, store the program and run ``init``, all in one transaction."""
        loaded = self.load(program)
        host, module_log = self.host, self.module_log
        tx = self.db.begin_mut_tx()
        try:
            for name in sorted(loaded.module_def.tables):
                module_log.system("Info", f"Creating table `{name}`")
            create_module_tables(tx, loaded.module_def)
            store_program(tx, self.identity, owner, loaded, program)
            host.loaded, host.runtime = loaded, ModuleRuntime(loaded)
            host.runtime.bind(tx)
            init = loaded.module_def.lifecycle_reducer("init")
            if init is not None:
                module_log.system("Info", f"Invoking `{init.name}` reducer")
                self._run_init(tx, owner, init.name)
        except BaseException:
            self.db.rollback(tx)
            loaded.unload()
            raise
        self.db.commit_tx(tx)
        module_log.system("Info", "Database initialized")
        host.activate(loaded)

    def _run_init(self, tx: MutTx, owner: Identity, name: str) -> None:
        self._announce(f"the `{name}` reducer", self.host.options.reducer_budget_seconds)
        status, message = self.host.call_in_tx(name, (), owner, None, Timestamp(self.host.now_micros()), tx)
        if status != CallStatus.COMMITTED:
            raise LaunchError(f"the `{name}` reducer failed: {message}")

    def _load_stored(self, program: bytes, replacement: bytes | None) -> None:
        if replacement is None:
            self.host.activate(self.load(program))
            return
        loaded = self.load(replacement)
        try:
            with self.db.read_tx() as tx:
                differences = schema_differences(tx, loaded.module_def)
            if differences:
                raise LaunchError(
                    "the database's module does not start, so it can only be replaced by a module that declares "
                    "the same tables (or republished with --clear, which deletes the data); this one differs: "
                    + "; ".join(differences)
                )
            with self.db.mut_tx() as tx:
                store_program(tx, self.identity, self.host.owner_identity, loaded, replacement)
        except BaseException:
            loaded.unload()
            raise
        self.module_log.system("Info", "module replaced (the previous one did not start)")
        self.host.activate(loaded)

    def plan(self, program: bytes) -> tuple[LoadedModule, MigrationPlan]:
        """Load ``program`` and plan the migration to it (host thread); the caller unloads it if unused."""
        loaded = self.load(program)
        return loaded, plan_migration(self.host.loaded.module_def, loaded.module_def)

    def update(self, program: bytes) -> MigrationPlan:
        """Migrate to ``program`` (host thread); raises ``MigrationRefusedError`` or ``LaunchError``, and then
        nothing changed."""
        loaded = self.load(program)
        try:
            outcome = self.host.apply_update(loaded, program)
        except MigrationRefusedError:
            loaded.unload()
            raise
        except Exception as exc:
            loaded.unload()
            raise LaunchError(f"the update failed: {exc}") from None
        plan: MigrationPlan = outcome.value
        return plan

    # -- stopping ----------------------------------------------------------------------------------------------------

    def shutdown(self, timeout: float = 30.0) -> None:
        """Finish the queued jobs, flush durability and release everything."""
        self.procedures.stop()
        self.host.shutdown(timeout)


def _procedure_clocks(options: DatabaseOptions) -> list[CallClock]:
    """One clock per procedure thread, each on its own lane of the deadline page (lane 0 is the host's)."""
    grace = options.host.hard_grace_seconds
    deadline = options.deadline
    return [
        CallClock(deadline.lane(lane) if deadline is not None else None, grace)
        for lane in range(1, PROCEDURE_THREADS + 1)
    ]


def _no_http(fetch: int, request: HttpRequest) -> None:
    raise HttpError("outbound HTTP is not available to this database (it runs outside a server)")


def _empty_directory(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    for entry in path.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def schema_differences(tx: ReadTx, module_def: ModuleDef) -> list[str]:
    """How the tables (and row-level security rules) ``module_def`` declares differ from the database's, one
    sentence each; empty when a database created from ``module_def`` would have exactly these tables."""
    scratch = Datastore()
    with _scratch_tx(scratch) as fresh:
        create_module_tables(fresh, module_def)
        wanted = {s.name: _shape(s) for s in fresh.schemas() if not s.is_system}
        wanted_rules = sorted(row[1] for row in fresh.scan(ST_ROW_LEVEL_SECURITY_ID))
    present = {s.name: _shape(s) for s in tx.schemas() if not s.is_system}
    present_rules = sorted(row[1] for row in tx.scan(ST_ROW_LEVEL_SECURITY_ID))
    differences = [f"table `{n}` is new" for n in sorted(wanted.keys() - present.keys())]
    differences += [f"table `{n}` is gone" for n in sorted(present.keys() - wanted.keys())]
    differences += [
        f"table `{n}` changed" for n in sorted(wanted.keys() & present.keys()) if wanted[n] != present[n]
    ]
    if wanted_rules != present_rules:
        differences.append("the row-level security rules changed")
    return differences


@contextmanager
def _scratch_tx(datastore: Datastore) -> Iterator[MutTx]:
    tx = datastore.begin_mut_tx()
    try:
        yield tx
    finally:
        tx.rollback()


def _shape(schema: TableSchema) -> tuple[Any, ...]:
    """What a table is, without the ids the datastore gave it and its parts."""
    schedule = schema.schedule
    return (
        schema.public,
        tuple((c.name, c.type) for c in schema.columns),
        schema.primary_key,
        frozenset((i.name, i.columns, i.algorithm, i.unique) for i in schema.indexes),
        frozenset(c.columns for c in schema.constraints),
        frozenset((q.col_pos, q.increment, q.start, q.min_value, q.max_value) for q in schema.sequences),
        None if schedule is None else (schedule.reducer_name, schedule.at_column),
    )
