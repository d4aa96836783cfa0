"""HostController: per database, the module host *and* the database, launched on first access.

Every access to a database goes through ``get_or_launch``, which opens and replays the database and loads its
module from the program stored in ``st_module`` (never from the publisher's files). Concurrent callers share one
launch. When a host panics it tears itself down and the controller forgets it, so the next access launches a
fresh host from what is on disk.
"""

from __future__ import annotations

import logging
import shutil
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from spacetimedb.db import DbOptions, RelationalDB
from spacetimedb.module import (
    LoadedModule,
    MigrationPlan,
    ModuleRuntime,
    create_module_tables,
    load_module,
)
from spacetimedb.module import log as module_log_api
from spacetimedb.sats import Identity, Timestamp

from .module_host import (
    COMMITTED,
    HostOptions,
    MigrationRefusedError,
    ModuleHost,
    log_to,
    run_user_code,
    store_program,
    stored_program,
)
from .module_log import ModuleLog, make_record
from .watchdog import CallClock, register

log = logging.getLogger(__name__)


class DatabaseNotFoundError(LookupError):
    def __init__(self, identity: Identity) -> None:
        super().__init__(f"no such database: {identity.to_hex()}")
        self.identity = identity


class PublishError(Exception):
    """The module could not be published (it does not load, or its ``init`` reducer failed)."""


@dataclass(frozen=True, slots=True)
class PublishResult:
    op: str  # "created" | "updated" | "unchanged"
    plan: MigrationPlan | None = None


@dataclass(frozen=True)
class ControllerOptions:
    host: HostOptions = field(default_factory=HostOptions)
    db: DbOptions = field(default_factory=DbOptions)
    # replaces os.fdatasync for every database (fault-injection tests)
    fsync: Callable[[int], None] | None = None


class _Cell:
    __slots__ = ("host", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.host: ModuleHost | None = None


class HostController:
    """Owns every database's host. ``data_dir=None`` keeps databases in memory (lost on restart or panic)."""

    def __init__(self, data_dir: Path | str | None, options: ControllerOptions | None = None) -> None:
        self.data_dir = None if data_dir is None else Path(data_dir)
        self.options = options or ControllerOptions()
        self._cells: dict[Identity, _Cell] = {}
        self._cells_lock = threading.Lock()
        self._memory: dict[Identity, tuple[RelationalDB, ModuleLog]] = {}
        self._launch_listeners: list[Callable[[ModuleHost], None]] = []
        self._panic_listeners: list[Callable[[ModuleHost, BaseException], None]] = []
        if self.data_dir is not None:
            databases = self.data_dir / "databases"
            databases.mkdir(parents=True, exist_ok=True)
            for leftover in databases.glob(".deleting-*"):
                shutil.rmtree(leftover, ignore_errors=True)

    # -- listeners ---------------------------------------------------------------------------------------------

    def on_launch(self, listener: Callable[[ModuleHost], None]) -> None:
        """``listener(host)`` runs for every launched host before it starts (the server attaches to it)."""
        self._launch_listeners.append(listener)

    def on_panic(self, listener: Callable[[ModuleHost, BaseException], None]) -> None:
        self._panic_listeners.append(listener)

    # -- paths -------------------------------------------------------------------------------------------------

    def database_dir(self, identity: Identity) -> Path:
        if self.data_dir is None:
            raise RuntimeError("an in-memory controller has no database directories")
        return self.data_dir / "databases" / identity.to_hex()

    def exists(self, identity: Identity) -> bool:
        if self.data_dir is None:
            return identity in self._memory
        return (self.database_dir(identity) / "clog").is_dir()

    def _cell(self, identity: Identity) -> _Cell:
        with self._cells_lock:
            cell = self._cells.get(identity)
            if cell is None:
                cell = self._cells[identity] = _Cell()
            return cell

    # -- launching ---------------------------------------------------------------------------------------------

    def get_host(self, identity: Identity) -> ModuleHost | None:
        cell = self._cells.get(identity)
        host = None if cell is None else cell.host
        return host if host is not None and host.alive else None

    def get_or_launch(self, identity: Identity) -> ModuleHost:
        """The running host of a database, launching it (open + replay + load module) if needed."""
        host = self.get_host(identity)
        if host is not None:
            return host
        cell = self._cell(identity)
        with cell.lock:
            if cell.host is not None and cell.host.alive:
                return cell.host
            if not self.exists(identity):
                raise DatabaseNotFoundError(identity)
            db, module_log = self._open(identity)
            try:
                cell.host = self._launch(identity, db, module_log)
            except BaseException:
                self._close_quietly(db, module_log)
                raise
            return cell.host

    def _open(self, identity: Identity) -> tuple[RelationalDB, ModuleLog]:
        if self.data_dir is None:
            return self._memory[identity]
        path = self.database_dir(identity)
        db = RelationalDB.open(path, self.options.db, fsync=self.options.fsync)
        try:
            return db, ModuleLog(path / "module_logs")
        except BaseException:
            db.close()
            raise

    def _launch(
        self, identity: Identity, db: RelationalDB, module_log: ModuleLog, loaded: LoadedModule | None = None
    ) -> ModuleHost:
        with db.read_tx() as tx:
            stored = stored_program(tx)
        if stored is None:
            raise DatabaseNotFoundError(identity)
        _, owner, kind, _, program = stored
        if loaded is None:
            loaded = load_module(program, kind)
        host = ModuleHost(identity, owner, db, loaded, module_log, self.options.host, self._host_panicked)
        db.set_failure_handler(host.panic)
        for listener in list(self._launch_listeners):
            listener(host)
        host.start()
        module_log.system("Info", "database host started")
        return host

    def _host_panicked(self, host: ModuleHost, exc: BaseException) -> None:
        cell = self._cells.get(host.database_identity)
        if cell is not None and cell.host is host:
            cell.host = None
        if self.data_dir is None:
            # an in-memory database has nothing to restart from
            self._memory.pop(host.database_identity, None)
        for listener in list(self._panic_listeners):
            try:
                listener(host, exc)
            except Exception:
                log.exception("panic listener failed")

    @staticmethod
    def _close_quietly(db: RelationalDB, module_log: ModuleLog) -> None:
        try:
            db.close()
        finally:
            module_log.close()

    # -- publishing ----------------------------------------------------------------------------------------------

    def publish(
        self, identity: Identity, owner: Identity, program: bytes, *, clear: bool = False
    ) -> PublishResult:
        """Create the database with this module (running ``init``), or update its module.

        An update migrates the schema automatically where that is safe; otherwise it raises
        ``MigrationRefusedError`` (with the plan) and changes nothing — unless ``clear``, which deletes the data
        and publishes afresh.
        """
        loaded = load_module(program)
        cell = self._cell(identity)
        if clear and self.exists(identity):
            with cell.lock:
                self._delete_locked(identity, cell)
        if not self.exists(identity):
            with cell.lock:
                if not self.exists(identity):
                    cell.host = self._create(identity, owner, loaded, program)
                    return PublishResult("created")
        host = self.get_or_launch(identity)
        if host.loaded.program_hash == loaded.program_hash:
            loaded.unload()
            return PublishResult("unchanged")
        plan = host.plan_update(loaded)
        if not plan.is_automatic:
            loaded.unload()
            raise MigrationRefusedError(plan)
        outcome = host.update_module(loaded, program).result()
        if outcome.status != COMMITTED:
            raise PublishError(outcome.message or "the update failed")
        return PublishResult("updated", plan)

    def pre_publish(self, identity: Identity, program: bytes) -> MigrationPlan | None:
        """The migration plan an update would apply (None when the database does not exist yet)."""
        loaded = load_module(program)
        try:
            if not self.exists(identity):
                return None
            return self.get_or_launch(identity).plan_update(loaded)
        finally:
            loaded.unload()

    def _create(
        self, identity: Identity, owner: Identity, loaded: LoadedModule, program: bytes
    ) -> ModuleHost:
        if self.data_dir is None:
            db, module_log = RelationalDB.in_memory(), ModuleLog(None)
        else:
            path = self.database_dir(identity)
            if path.exists():
                shutil.rmtree(path)  # leftovers of a failed publish
            db, module_log = self._open(identity)
        try:
            self._initialize(identity, owner, loaded, program, db, module_log)
            if self.data_dir is None:
                self._memory[identity] = (db, module_log)
            return self._launch(identity, db, module_log, loaded)
        except BaseException:
            self._close_quietly(db, module_log)
            self._memory.pop(identity, None)
            if self.data_dir is not None:
                shutil.rmtree(self.database_dir(identity), ignore_errors=True)
            loaded.unload()
            raise

    def _initialize(
        self,
        identity: Identity,
        owner: Identity,
        loaded: LoadedModule,
        program: bytes,
        db: RelationalDB,
        module_log: ModuleLog,
    ) -> None:
        """Create the tables, store the program and run ``init``, all in one transaction."""
        tx = db.begin_mut_tx()
        try:
            for name in sorted(loaded.module_def.tables):
                module_log.system("Info", f"Creating table `{name}`")
            create_module_tables(tx, loaded.module_def)
            store_program(tx, identity, owner, loaded, program)
            init = loaded.module_def.lifecycle_reducer("init")
            if init is not None:
                module_log.system("Info", f"Invoking `{init.name}` reducer")
                self._run_init(tx, identity, owner, loaded, module_log, init.name)
        except BaseException:
            db.rollback(tx)
            raise
        db.commit_tx(tx)
        module_log.system("Info", "Database initialized")

    def _run_init(
        self,
        tx: object,
        identity: Identity,
        owner: Identity,
        loaded: LoadedModule,
        module_log: ModuleLog,
        name: str,
    ) -> None:
        runtime = ModuleRuntime(loaded)
        runtime.bind(tx)  # type: ignore[arg-type]
        clock = CallClock()
        register(clock)

        def sink(level: str, message: str, filename: str | None, line: int | None) -> None:
            module_log.write(make_record(level, message, function=name, filename=filename, line_number=line))

        def log_error(level: str, message: str, function: str | None, exc: BaseException | None) -> None:
            log_to(module_log, loaded, level, message, function, exc)

        previous = module_log_api.set_sink(sink)
        ctx = runtime.begin_call(tx, owner, None, Timestamp.now(), identity)  # type: ignore[arg-type]
        try:
            status, message, _ = run_user_code(
                clock,
                self.options.host.reducer_budget_seconds,
                name,
                lambda: runtime.call(name, ctx, ()),
                log_error,
            )
        finally:
            runtime.end_call()
            module_log_api.set_sink(previous)
        if status != COMMITTED:
            raise PublishError(f"the `{name}` reducer failed: {message}")

    # -- deleting and stopping ---------------------------------------------------------------------------------

    def delete(self, identity: Identity) -> bool:
        """Stop the host and delete the database's files; False if there was no such database."""
        cell = self._cell(identity)
        with cell.lock:
            if not self.exists(identity):
                return False
            self._delete_locked(identity, cell)
            return True

    def _delete_locked(self, identity: Identity, cell: _Cell) -> None:
        if cell.host is not None:
            cell.host.shutdown()
            cell.host = None
        if self.data_dir is None:
            entry = self._memory.pop(identity, None)
            if entry is not None:
                self._close_quietly(*entry)
            return
        path = self.database_dir(identity)
        doomed = path.with_name(f".deleting-{path.name}-{uuid.uuid4().hex[:8]}")
        path.rename(
            doomed
        )  # atomically gone from the database list, even if the removal below is interrupted
        shutil.rmtree(doomed, ignore_errors=True)

    def shutdown(self) -> None:
        """Finish queued work, flush durability, release every lock and file, for every database."""
        with self._cells_lock:
            cells = list(self._cells.items())
        for _, cell in cells:
            with cell.lock:
                if cell.host is not None:
                    cell.host.shutdown()
                    cell.host = None
        for db, module_log in self._memory.values():
            self._close_quietly(db, module_log)
        self._memory.clear()

    def running(self) -> list[ModuleHost]:
        return [c.host for c in list(self._cells.values()) if c.host is not None and c.host.alive]
