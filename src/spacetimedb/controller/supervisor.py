"""The HostController: which databases run, in which worker process, and what happens when one fails.

Every access goes through ``get_or_launch``, which spawns the database's worker on first use (concurrent callers
share one launch). A worker that dies for any reason takes only its own database down: its clients are closed
with the reason, requests in flight fail with it, and the next access launches a fresh worker that replays the
database from disk. A database whose worker fails ``failed_after`` launches in a row is marked failed (with the
reason, also written to its module log) until its owner republishes it.

The supervisor reads every worker's deadline slot ten times a second and kills a worker still running module
code (a reducer, its top-level code, a scheduled reducer) or a query past budget + grace.

Publishing never runs module code here: a throw-away worker validates the program (and plans the migration from
the current one), then the database's own worker creates the database or applies the update.
"""

from __future__ import annotations

import asyncio
import collections
import compileall
import contextlib
import logging
import shutil
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from spacetimedb.backup import Manifest
from spacetimedb.keccak import keccak256
from spacetimedb.module_log import system_line
from spacetimedb.protocol import seam
from spacetimedb.sats import Identity

from . import directories
from .backups import BackupStream, RestoreRefused, RestoreResult
from .process import SandboxSettings, WorkerGone, WorkerProcess
from .running import HttpEgress, RunningDatabase

log = logging.getLogger(__name__)
T = TypeVar("T")

DEADLINE_POLL_SECONDS = 0.1
# a deadline poll this much later than asked means the server was held up (see ``_watch_deadlines``)
SERVER_HELD_UP_SECONDS = 0.5
# what a launch's deadlines allow beyond budget + grace (reading the message, answering)
START_SLACK_SECONDS = 1.0
MAX_STARTING_ANNOUNCEMENTS = 4  # loading the current and the new module, init: a worker never needs more
MAX_NOTES = 100  # supervisor log records kept per database while no worker runs


@dataclass(frozen=True)
class WorkerSettings:
    """How databases run (``spacetime start`` options)."""

    reducer_budget_seconds: float = 5.0
    load_budget_seconds: float = 30.0  # a module's top-level code, at publish and at each launch
    hard_grace_seconds: float = 2.0
    snapshot_interval: int = 1_000_000
    max_segment_size: int = 1 << 30
    query_row_limit: int | None = 100_000  # for others than the owner, unless the database sets `row_limit`
    query_byte_limit: int | None = 16 << 20
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)
    launch_timeout_seconds: float = 300.0
    failed_after: int = 3  # consecutive failed launches before a database is marked failed
    # performs procedures' outbound HTTP requests (the server's egress policy); None: refused
    http_egress: HttpEgress | None = None
    # transactions a read of the past may replay beyond the nearest snapshot
    as_of_max_replay: int = 1_000_000

    def host_settings(self) -> seam.HostSettings:
        return seam.HostSettings(
            int(self.reducer_budget_seconds * 1e6),
            int(self.load_budget_seconds * 1e6),
            int(self.hard_grace_seconds * 1e6),
            self.snapshot_interval,
            self.max_segment_size,
            self.query_row_limit or 0,
            self.query_byte_limit or 0,
        )


class DatabaseNotFoundError(LookupError):
    def __init__(self, identity: Identity, detail: str | None = None) -> None:
        super().__init__(detail or f"no such database: {identity.to_hex()}")
        self.identity = identity


class DatabaseUnavailableError(RuntimeError):
    """The database cannot serve now (its worker failed to start or died); ``str()`` says why."""


class DatabaseFailedError(DatabaseUnavailableError):
    """The database failed to start ``failed_after`` times in a row; only a republish clears that."""


class PastRefused(Exception):
    """A read of the past cannot be made (an offset out of range, too much to replay...); ``str()`` says why."""


class PublishError(Exception):
    """The program could not be published; ``str()`` says why."""


class MigrationRefusedError(PublishError):
    def __init__(self, migration: seam.MigrationSummary) -> None:
        super().__init__(
            "the update needs a manual migration:\n" + "\n".join(f"- {c}" for c in migration.incompatible)
        )
        self.migration = migration


# Upstream's refusals of an update under its migration policy (crates/schema/src/auto_migrate.rs,
# MigrationPolicyError); its publish route answers them 400 "Failed to create or update the database: ...".
BREAKING_CHANGE_DISALLOWED = (
    "Migration plan contains a client-breaking change which is disallowed under current policy"
)
INVALID_MIGRATION_TOKEN = "Token provided is invalid or does not match expected hash"


def migration_token(database: Identity, old_program_hash: bytes, new_program_hash: bytes) -> bytes:
    """The token that acknowledges one update of ``database`` from one program to another, as upstream's
    ``MigrationToken::hash``: Keccak-256 of the three hex strings. Not a secret: it only proves that the
    publisher saw this particular plan (the pre-publish answer carries it)."""
    return keccak256((database.to_hex() + old_program_hash.hex() + new_program_hash.hex()).encode())


class MigrationPolicyError(PublishError):
    """The update is not allowed under the publish request's migration policy; ``str()`` is upstream's text."""


def check_migration_policy(
    migration: seam.MigrationSummary | None, break_clients_token: bytes | None, expected_token: bytes
) -> None:
    """Upstream's ``MigrationPolicy::permits_plan``: without a token (the ``Compatible`` policy) an update that
    disconnects the clients is refused; with one (``BreakClients``) any update is allowed, but only with the
    token of exactly this update."""
    if break_clients_token is None:
        if migration is not None and migration.disconnects_clients:
            raise MigrationPolicyError(BREAKING_CHANGE_DISALLOWED)
    elif break_clients_token != expected_token:
        raise MigrationPolicyError(INVALID_MIGRATION_TOKEN)


@dataclass(frozen=True, slots=True)
class PublishResult:
    op: str  # "created" | "updated" | "unchanged"
    program_hash: bytes
    migration: seam.MigrationSummary | None = None


class _LaunchFailed(Exception):
    pass


class HostController:
    """Owns every database's worker. ``data_dir=None`` keeps databases in memory (lost when their worker
    stops)."""

    def __init__(self, data_dir: Path | str | None, settings: WorkerSettings | None = None) -> None:
        self.data_dir = None if data_dir is None else Path(data_dir)
        self.settings = settings or WorkerSettings()
        self._running: dict[Identity, RunningDatabase] = {}
        self._locks: dict[Identity, asyncio.Lock] = {}
        self._workers: set[WorkerProcess] = set()
        self._launch_failures: dict[Identity, int] = {}
        self._failed: dict[Identity, str] = {}
        self._notes: dict[Identity, list[str]] = {}
        # databases whose disk was full: they run read-only until their worker finds space again
        self._read_only: dict[Identity, str] = {}
        self._memory: set[Identity] = set()
        # (database, cause) -> how many of its workers died unasked, or failed to launch
        self.restarts: collections.Counter[tuple[Identity, str]] = collections.Counter()
        self._monitor: asyncio.Task[None] | None = None
        self._stopping = False
        if self.data_dir is not None:
            databases = self.data_dir / "databases"
            databases.mkdir(parents=True, exist_ok=True)
            directories.recover(databases)

    async def start(self) -> None:
        await asyncio.to_thread(compile_worker_code)
        self._monitor = asyncio.ensure_future(self._watch_deadlines())

    def remove_orphans(self, known: Collection[Identity]) -> list[str]:
        """Remove the directories of databases not in ``known`` (the control database's): what is left of a
        creation or deletion cut short before it was recorded. Call before serving; returns the hex identities
        removed."""
        if self.data_dir is None:
            return []
        return directories.remove_orphans(self.data_dir / "databases", {i.to_hex() for i in known})

    # -- what exists -------------------------------------------------------------------------------------------------

    def database_dir(self, identity: Identity) -> Path:
        if self.data_dir is None:
            raise RuntimeError("an in-memory controller has no database directories")
        return self.data_dir / "databases" / identity.to_hex()

    def exists(self, identity: Identity) -> bool:
        if self.data_dir is None:
            return identity in self._memory
        return (self.database_dir(identity) / "clog").is_dir()

    def running(self, identity: Identity) -> RunningDatabase | None:
        running = self._running.get(identity)
        return running if running is not None and running.alive else None

    def failure(self, identity: Identity) -> str | None:
        return self._failed.get(identity)

    def _lock(self, identity: Identity) -> asyncio.Lock:
        lock = self._locks.get(identity)
        if lock is None:
            lock = self._locks[identity] = asyncio.Lock()
        return lock

    # -- launching ---------------------------------------------------------------------------------------------------

    async def get_or_launch(self, identity: Identity) -> RunningDatabase:
        running = self.running(identity)
        if running is not None:
            return running
        async with self._lock(identity):
            running = self.running(identity)
            if running is not None:
                return running
            return await self._open(identity)

    async def _open(self, identity: Identity, replacement: bytes | None = None) -> RunningDatabase:
        if not self.exists(identity):
            raise DatabaseNotFoundError(identity)
        failed = self._failed.get(identity)
        if failed is not None and replacement is None:
            raise DatabaseFailedError(f"database failed to start: {failed}; republish to fix")
        if self.data_dir is None:
            raise DatabaseNotFoundError(identity)  # an in-memory database whose worker is gone is gone
        notes = tuple(self._notes.get(identity, ()))
        read_only = self._read_only.get(identity)
        first = seam.OpenDatabase(identity, self.settings.host_settings(), replacement, notes, read_only)

        def notes_written() -> None:  # a worker writes them before it says anything
            del self._notes.get(identity, [])[: len(notes)]

        try:
            running = await self._launch(identity, first, self.database_dir(identity), notes_written)
        except _LaunchFailed as exc:
            self._launch_failed(identity, str(exc))
            raise DatabaseUnavailableError(f"the database failed to start: {exc}") from None
        self._launch_failures.pop(identity, None)
        self._failed.pop(identity, None)
        return running

    async def _launch(
        self,
        identity: Identity,
        first: Any,
        directory: Path | None,
        spoke: Callable[[], None] | None = None,
    ) -> RunningDatabase:
        running = await self._start_worker(identity, first, directory, spoke)
        self._running[identity] = running

        def writable_again() -> None:
            self._read_only.pop(identity, None)

        running.on_writable = writable_again
        running.worker.on_death(lambda reason: self._worker_died(identity, running, reason))
        return running

    async def _start_worker(
        self,
        identity: Identity,
        first: Any,
        directory: Path | None,
        spoke: Callable[[], None] | None = None,
        label: str = "",
    ) -> RunningDatabase:
        """A worker that answered ``first`` with ``Ready``, not yet the database's running worker."""
        worker = await self._spawn(label or identity.to_hex()[:16], directory)
        answer, following = await self._first_answer(worker, first, spoke)
        if isinstance(answer, seam.LaunchFailed):
            await worker.stop(5)
            raise _LaunchFailed(answer.reason)
        if not isinstance(answer, seam.Ready):
            worker.kill(f"it answered a launch with {type(answer).__name__}")
            raise _LaunchFailed(worker.death_reason())
        running = RunningDatabase(identity, worker, answer, self.settings.http_egress)
        for message in following:  # what came right behind Ready, before the database took over
            running.on_message(message)
        return running

    async def _spawn(self, label: str, directory: Path | None) -> WorkerProcess:
        if self._stopping:
            raise DatabaseUnavailableError("the server is shutting down")
        worker = WorkerProcess(label, directory, self.settings.sandbox)
        await worker.spawn()
        self._workers.add(worker)
        worker.on_death(lambda _: self._workers.discard(worker))
        return worker

    async def _first_answer(
        self, worker: WorkerProcess, first: Any, spoke: Callable[[], None] | None = None
    ) -> tuple[Any, list[Any]]:
        """Send the worker its first message and wait for its answer (its death is a failed launch); also
        returns the messages that arrived right behind the answer. ``spoke`` runs at its first message."""
        watch = _LaunchWatch(self.settings, spoke)
        worker.handler = watch.take
        worker.on_death(watch.died)
        try:
            worker.send(first)
            return await watch.answer, watch.following
        except _Overrun as overrun:
            worker.kill(str(overrun))
            raise _LaunchFailed(worker.death_reason()) from None
        except WorkerGone as exc:
            raise _LaunchFailed(f"its worker stopped while starting: {exc}") from None
        finally:
            watch.close()

    def _launch_failed(self, identity: Identity, reason: str) -> None:
        count = self._launch_failures.get(identity, 0) + 1
        self.restarts[identity, "launch_failed"] += 1
        self._launch_failures[identity] = count
        failed = count >= self.settings.failed_after
        if failed:
            self._failed[identity] = reason
        log.warning("database %s failed to start (%d in a row): %s", identity.to_hex(), count, reason)
        self._note(
            identity,
            "Panic" if failed else "Error",
            f"the database failed to start: {reason}"
            + ("; it is marked failed until its module is republished" if failed else ""),
        )

    def _worker_died(self, identity: Identity, running: RunningDatabase, reason: str) -> None:
        if self._running.get(identity) is running:
            del self._running[identity]
        if running.worker.stopped_cleanly:
            return
        log.warning("the worker of database %s stopped: %s", identity.to_hex(), reason)
        self.restarts[identity, running.worker.death_cause] += 1
        if running.worker.disk_full:
            self._read_only[identity] = (
                f"no space left on device ({reason}); the database is read-only until there is"
            )
        if self.data_dir is None:
            self._memory.discard(identity)
        self._note(identity, "Panic", f"the database's worker stopped: {reason}")

    def _note(self, identity: Identity, level: str, message: str) -> None:
        """A module-log record written while no worker runs: the next worker appends it to the log, and until
        then ``read_log`` shows it. (The server never opens the files of a database itself: the module could
        have made them links to anything.)"""
        notes = self._notes.setdefault(identity, [])
        notes.append(system_line(level, message))
        del notes[:-MAX_NOTES]

    async def read_log(self, identity: Identity, lines: int | None) -> list[str]:
        """The module log of a database that is not running: read by a throw-away worker confined to the
        database's directory, followed by what the supervisor noted since."""
        notes = list(self._notes.get(identity, ()))
        kept: list[str] = []
        if self.data_dir is not None and self.exists(identity):
            try:
                answer = await self._ask_throwaway(
                    "log reader", self.database_dir(identity), seam.ReadLog(lines)
                )
            except _LaunchFailed as exc:
                raise DatabaseUnavailableError(f"the log could not be read: {exc}") from None
            if isinstance(answer, seam.LogContents):
                kept = list(answer.lines)
        kept += notes
        return kept if lines is None else kept[-lines:] if lines > 0 else []

    async def _ask_throwaway(self, label: str, directory: Path | None, message: Any) -> Any:
        """The answer of a throw-away worker confined to ``directory`` to ``message`` (``_LaunchFailed`` if it
        gives none); the worker is stopped after."""
        worker = await self._spawn(label, directory)
        try:
            answer, _ = await self._first_answer(worker, message)
        finally:
            await worker.stop(5)
        return answer

    # -- the past ------------------------------------------------------------------------------------------------

    async def query_past(
        self, identity: Identity, sql: str, caller: Identity, offset: int | None, micros: int | None
    ) -> seam.PastAnswer:
        """Run the read-only ``sql`` on the state right after transaction ``offset`` (or the last one committed
        at or before ``micros``), rebuilt by a throw-away worker from the database's files; ``PastRefused`` says
        why it cannot be."""
        request = seam.QueryPast(
            sql,
            caller,
            offset,
            micros,
            self._durable_limit(identity),
            self.settings.as_of_max_replay,
            self.settings.query_byte_limit or 0,
        )
        answer = await self._ask_about_the_past(identity, request)
        if not isinstance(answer, seam.PastAnswer):
            raise PastRefused(f"the worker answered {type(answer).__name__}")
        return answer

    async def list_transactions(self, identity: Identity, first: int | None, limit: int) -> str:
        """``limit`` transactions from ``first`` (None: the newest) as a JSON array."""
        request = seam.ListTransactions(
            first, limit, self._durable_limit(identity), self.settings.as_of_max_replay
        )
        answer = await self._ask_about_the_past(identity, request)
        if not isinstance(answer, seam.TransactionList):
            raise PastRefused(f"the worker answered {type(answer).__name__}")
        return answer.entries_json

    def _durable_limit(self, identity: Identity) -> int | None:
        """What a read of the past may see: the running database's durable offset (its files hold no more that
        is sure to stay); a database that is not running, all its log."""
        running = self.running(identity)
        return None if running is None else max(running.durable.value, 0)

    async def _ask_about_the_past(self, identity: Identity, request: Any) -> Any:
        if self.data_dir is None:
            raise PastRefused("a server without a data directory keeps no past")
        if not self.exists(identity):
            raise DatabaseNotFoundError(identity)
        try:
            answer = await self._ask_throwaway(
                "past " + identity.to_hex()[:16], self.database_dir(identity), request
            )
        except _LaunchFailed as exc:
            raise PastRefused(f"the past could not be read: {exc}") from None
        if isinstance(answer, seam.LaunchFailed):
            raise PastRefused(answer.reason)
        return answer

    # -- the hard deadline -------------------------------------------------------------------------------------------

    def _stall_limit(self, budget: float) -> float:
        """How long a worker may go without finishing any of its waiting work, when its work runs under
        ``budget``: the budget and the grace, and as long again for what follows a call (its commit, the
        subscriptions it updates)."""
        return budget + self.settings.hard_grace_seconds + max(2.0, self.settings.reducer_budget_seconds)

    async def _watch_deadlines(self) -> None:
        """Kill workers past the deadline their own slot states, and workers that finish nothing for longer
        than any legitimate piece of work takes (the slot is in the worker's memory: module code can clear
        it)."""
        grace = self.settings.hard_grace_seconds
        usual = self._stall_limit(self.settings.reducer_budget_seconds)
        polled = time.monotonic()
        while True:
            await asyncio.sleep(DEADLINE_POLL_SECONDS)
            now_ns, now = time.monotonic_ns(), time.monotonic()
            # this poll is late: the server itself was held up (a blocked loop, a stopped or starved process), and
            # what the workers sent meanwhile is not read yet, so their progress cannot be judged this round (their
            # deadlines can: a worker writes those itself)
            held_up = now - polled > DEADLINE_POLL_SECONDS + SERVER_HELD_UP_SECONDS
            polled = now
            for worker in list(self._workers):
                if not worker.alive:
                    continue
                slot = worker.deadline
                what = slot.overdue(now_ns) if slot is not None else None
                limit = worker.stall_allowance(usual)
                if what is not None:
                    worker.kill(
                        f"`{what}` was still running {grace:g}s after its time budget ran out, so its worker was "
                        "stopped",
                        "time_budget",
                    )
                elif not held_up and worker.stalled_for(now) > limit:
                    worker.kill_with_stack_dump(
                        f"it finished nothing for {limit:g}s while work waited, longer than any time budget and "
                        "its grace allow (module code may have stopped its own time limits), so it was stopped",
                        "stalled",
                    )

    # -- publishing --------------------------------------------------------------------------------------------------

    async def validate(self, program: bytes, current: bytes | None = None) -> seam.Validated:
        """Load ``program`` (and ``current``, planning the migration from it) in a throw-away worker."""
        try:
            answer = await self._ask_throwaway(
                "validation", None, seam.ValidateProgram(program, current, self.settings.host_settings())
            )
        except _LaunchFailed as exc:
            raise PublishError(f"the module could not be loaded: {exc}") from None
        if isinstance(answer, seam.LaunchFailed):
            raise PublishError(answer.reason)
        if not isinstance(answer, seam.Validated):
            raise PublishError(f"the validation answered {type(answer).__name__}")
        return answer

    async def publish(
        self,
        identity: Identity,
        owner: Identity,
        program: bytes,
        *,
        clear: bool = False,
        break_clients_token: bytes | None = None,
    ) -> PublishResult:
        """Create the database with this program (running ``init``), or update its module.

        An update migrates the schema where that is safe; otherwise ``MigrationRefusedError`` (with the plan)
        and nothing changes — unless ``clear``, which replaces the database (data included) with a new one, in
        one step that a crash cannot cut in half. An update that disconnects the clients needs
        ``break_clients_token``, the ``migration_token`` of this very update (``MigrationPolicyError``
        otherwise, and nothing changes)."""
        async with self._lock(identity):
            replacing = clear and self.exists(identity)
            if replacing or not self.exists(identity):
                validated = await self.validate(program)
                if replacing:
                    await self._replace(identity, owner, program)
                else:
                    await self._create(identity, owner, program)
                return PublishResult("created", validated.program_hash)
            if identity in self._failed:
                return await self._republish_failed(identity, program)
            running = self.running(identity) or await self._open(identity)
            validated = await self.validate(program, await running.program())
            if validated.program_hash == running.program_hash:
                return PublishResult("unchanged", validated.program_hash)
            if validated.migration is not None and not validated.migration.automatic:
                raise MigrationRefusedError(validated.migration)
            expected_token = migration_token(identity, running.program_hash, validated.program_hash)
            check_migration_policy(validated.migration, break_clients_token, expected_token)
            done = await running.update(program, self._stall_limit(self.settings.load_budget_seconds))
            if done.error is not None:
                if done.migration is not None and not done.migration.automatic:
                    raise MigrationRefusedError(done.migration)
                raise PublishError(done.error)
            running.program_hash = done.program_hash
            return PublishResult("updated", done.program_hash, done.migration)

    async def _republish_failed(self, identity: Identity, program: bytes) -> PublishResult:
        """A database that fails to start: migrate to ``program`` before its stored module runs any code."""
        validated = await self.validate(program)
        try:
            await self._open(identity, replacement=program)
        except DatabaseUnavailableError as exc:
            raise PublishError(str(exc)) from None
        return PublishResult("updated", validated.program_hash)

    async def _create(self, identity: Identity, owner: Identity, program: bytes) -> None:
        directory = None
        if self.data_dir is not None:
            directory = self.database_dir(identity)
            await asyncio.to_thread(_fresh_directory, directory)
        self._forget_state(identity)
        first = seam.CreateDatabase(identity, owner, program, self.settings.host_settings())
        try:
            await self._launch(identity, first, directory)
        except _LaunchFailed as exc:
            if directory is not None:
                await asyncio.to_thread(shutil.rmtree, directory, True)
            raise PublishError(str(exc)) from None
        if directory is None:
            self._memory.add(identity)

    async def _replace(self, identity: Identity, owner: Identity, program: bytes) -> None:
        """Replace the database with a new one made from ``program``: it is created completely beside the old
        one, then swapped in by renames (``directories.swap_in``). A crash at any point leaves the old database
        intact or the new one finished; the old one serves until the swap."""
        if self.data_dir is None:  # nothing in memory survives a crash anyway
            await self._delete_locked(identity)
            await self._create(identity, owner, program)
            return
        live = self.database_dir(identity)
        ready = await self._create_beside(live, identity, owner, program)
        await self._swap_in_locked(identity, live, ready, "the database was cleared")
        log.info("database %s was replaced by a new one (publish --clear)", identity.to_hex())

    async def _swap_in_locked(self, identity: Identity, live: Path, ready: Path, reason: str) -> None:
        """Stop the database's worker (its clients are told ``reason``) and make ``ready`` the live directory."""
        # a worker whose directory is renamed would open its files by a stale path
        await self._stop_locked(identity, reason)
        try:
            await asyncio.to_thread(directories.swap_in, live, ready)
        except BaseException:
            await asyncio.to_thread(directories.remove_side_entry, ready)
            raise

    async def _create_beside(self, live: Path, identity: Identity, owner: Identity, program: bytes) -> Path:
        """Create the database in a staging directory beside ``live``, in a worker of its own that is stopped
        right after; once it stopped cleanly (everything it wrote is durable) the directory is renamed ready.
        Returns that directory; on failure nothing is left behind."""

        async def create(staging: Path) -> None:
            first = seam.CreateDatabase(identity, owner, program, self.settings.host_settings())
            try:
                created = await self._start_worker(identity, first, staging, label="new " + live.name[:16])
            except _LaunchFailed as exc:
                raise PublishError(str(exc)) from None
            await created.worker.stop()
            # a creation commits one transaction: without a durable offset it is not on disk
            if not created.worker.stopped_cleanly or created.durable.value < 0:
                raise PublishError(f"the new database did not stop cleanly: {created.worker.death_reason()}")

        _, ready = await _build_beside(live, create)
        return ready

    async def pre_publish(self, identity: Identity, program: bytes) -> seam.Validated | None:
        """The program's hash and the migration an update would apply (None when the database does not exist
        yet)."""
        if not self.exists(identity):
            return None
        running = await self.get_or_launch(identity)
        return await self.validate(program, await running.program())

    # -- backups and restores ---------------------------------------------------------------------------------------

    async def backup(self, identity: Identity) -> BackupStream:
        """Start streaming a backup archive of the database: of its running worker's durable offset now, or of
        its files as they are when it does not start. A throw-away worker reads the files; writers wait for
        nothing."""
        if self.data_dir is None:
            raise DatabaseUnavailableError("a server without a data directory keeps no files to back up")
        if not self.exists(identity):
            raise DatabaseNotFoundError(identity)
        last: int | None = None
        program: bytes | None = None
        with contextlib.suppress(
            DatabaseUnavailableError
        ):  # a database that fails to start: its files as they are
            running = await self.get_or_launch(identity)
            program = await running.program()
            last = running.durable.value
            if last < 0:
                raise DatabaseUnavailableError("the database has nothing durable to back up yet")
        worker = await self._spawn("backup " + identity.to_hex()[:16], self.database_dir(identity))
        stream = BackupStream(worker)
        try:
            await stream.start(seam.BackupDatabase(identity, last, program))
        except BaseException:
            await stream.close()
            raise
        return stream

    async def restore(
        self,
        identity: Identity,
        owner: Identity,
        unpack: Callable[[Path], Awaitable[Manifest]],
        *,
        clear: bool = False,
    ) -> RestoreResult:
        """Make the database ``identity`` (owned by ``owner``) from an archive: ``unpack`` verifies it into an
        empty staging directory beside the live one, a throw-away worker checks the state it holds, then it is
        swapped in (replacing the database only with ``clear``). On any failure nothing changed."""
        if self.data_dir is None:
            raise RestoreRefused("restoring needs a server with a data directory")
        async with self._lock(identity):
            existing = self.exists(identity)
            if existing and not clear:
                raise RestoreRefused("the database exists; replace it with --clear (its data is lost)")
            live = self.database_dir(identity)
            result, ready = await self._restore_beside(live, identity, owner, unpack)
            if existing:
                await self._swap_in_locked(
                    identity, live, ready, "the database was replaced by a restored backup"
                )
            else:
                self._forget_state(identity)
                await asyncio.to_thread(directories.rename_durably, ready, live)
        log.info("database %s was restored from a backup at offset %d", identity.to_hex(), result.offset)
        return result

    async def _restore_beside(
        self, live: Path, identity: Identity, owner: Identity, unpack: Callable[[Path], Awaitable[Manifest]]
    ) -> tuple[RestoreResult, Path]:
        async def restore(staging: Path) -> RestoreResult:
            manifest = await unpack(staging)
            request = seam.RestoreDatabase(
                identity, owner, manifest.offset, manifest.snapshot_offset, self.settings.host_settings()
            )
            try:
                answer = await self._ask_throwaway("restore " + live.name[:16], staging, request)
            except _LaunchFailed as exc:
                raise RestoreRefused(f"the archive does not restore: {exc}") from None
            if isinstance(answer, seam.LaunchFailed):
                raise RestoreRefused(answer.reason)
            if not isinstance(answer, seam.Restored) or answer.offset != manifest.offset:
                raise RestoreRefused(f"the restore worker answered {type(answer).__name__}")
            return RestoreResult(answer.program_hash, answer.offset, manifest)

        return await _build_beside(live, restore)

    # -- deleting and stopping ---------------------------------------------------------------------------------------

    async def _stop_locked(self, identity: Identity, reason: str) -> None:
        """Stop the database's worker (its clients are closed with ``reason``) and forget its failures."""
        running = self._running.pop(identity, None)
        if running is not None:
            for sink in list(running.clients.values()):
                sink.close(1011, reason)
            await running.worker.stop()
        self._forget_state(identity)

    def _forget_state(self, identity: Identity) -> None:
        """Drop what is remembered about the database's past workers (failures, notes, a full disk)."""
        self._failed.pop(identity, None)
        self._launch_failures.pop(identity, None)
        self._notes.pop(identity, None)
        self._read_only.pop(identity, None)

    async def delete(self, identity: Identity) -> bool:
        """Stop the database's worker and delete its files; False if there was no such database."""
        async with self._lock(identity):
            if not self.exists(identity):
                return False
            await self._delete_locked(identity)
            return True

    async def _delete_locked(self, identity: Identity) -> None:
        await self._stop_locked(identity, "the database was deleted")
        if self.data_dir is None:
            self._memory.discard(identity)
            return
        await asyncio.to_thread(directories.delete_database_dir, self.database_dir(identity))

    async def shutdown(self) -> None:
        """Ask every worker to finish its queued work and stop; kill those that do not."""
        self._stopping = True
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        await asyncio.gather(*(worker.stop() for worker in list(self._workers)), return_exceptions=True)
        self._running.clear()

    def running_databases(self) -> list[RunningDatabase]:
        return [r for r in self._running.values() if r.alive]


def compile_worker_code() -> None:
    """Write the byte code of the project's modules where it is missing or stale. A sandboxed worker cannot
    write it (the project is read-only to it), so without this every launch would compile the modules only a
    worker imports again (hundreds of milliseconds)."""
    package = Path(__file__).resolve().parents[1]
    try:
        compileall.compile_dir(package, quiet=2, workers=1)
    except OSError:  # an installation we may not write to was compiled when it was installed
        log.debug("could not write byte code under %s", package)


async def _build_beside(live: Path, build: Callable[[Path], Awaitable[T]]) -> tuple[T, Path]:
    """Run ``build`` on a new staging directory beside the live one ``live``; once it returned, rename the
    directory ready (``directories``). Returns what it returned and the ready directory; on failure nothing is left
    behind."""
    staging = directories.side_path(live, directories.STAGING)
    await asyncio.to_thread(staging.mkdir)
    try:
        result = await build(staging)
        ready = directories.side_path(live, directories.READY)
        await asyncio.to_thread(directories.rename_durably, staging, ready)
    except BaseException:
        await asyncio.to_thread(directories.remove_side_entry, staging)
        raise
    return result, ready


def _fresh_directory(path: Path) -> None:
    """An empty directory at ``path`` (leftovers of a creation that was cut short are removed)."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)


class _Overrun(Exception):
    """A launching worker did not answer in time."""


class _LaunchWatch:
    """The first answer of a launching worker, and by when it must come.

    While the worker runs module code (it says so with ``Starting``) it must answer within that code's budget
    plus the grace, by the supervisor's clock: module code can stop the worker's own clocks."""

    def __init__(self, settings: WorkerSettings, spoke: Callable[[], None] | None) -> None:
        self._settings = settings
        self._spoke = spoke
        self._loop = asyncio.get_running_loop()
        self.answer: asyncio.Future[Any] = self._loop.create_future()
        self.following: list[Any] = []
        self._announced = 0
        self._timer = self._loop.call_later(
            settings.launch_timeout_seconds,
            self._expire,
            f"it did not start within {settings.launch_timeout_seconds:g}s",
        )

    def take(self, message: Any) -> None:
        if self._spoke is not None:
            self._spoke()
            self._spoke = None
        if self.answer.done():
            self.following.append(message)
        elif isinstance(message, seam.Starting):
            self._starting(message)
        else:
            self.answer.set_result(message)

    def _starting(self, message: seam.Starting) -> None:
        self._announced += 1
        if self._announced > MAX_STARTING_ANNOUNCEMENTS:
            raise seam.SeamViolation("too many Starting messages")
        budget, grace = message.budget_micros / 1e6, self._settings.hard_grace_seconds
        self._timer.cancel()
        self._timer = self._loop.call_later(
            budget + grace + START_SLACK_SECONDS,
            self._expire,
            f"{message.what} ran past its time budget ({budget:g}s) and the {grace:g}s grace, so its worker "
            "was stopped",
        )

    def _expire(self, reason: str) -> None:
        if not self.answer.done():
            self.answer.set_exception(_Overrun(reason))

    def died(self, reason: str) -> None:
        if not self.answer.done():
            self.answer.set_exception(_LaunchFailed(f"its worker stopped while starting: {reason}"))

    def close(self) -> None:
        self._timer.cancel()
