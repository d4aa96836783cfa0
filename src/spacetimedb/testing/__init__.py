"""Testing a module without a server: ``spacetimedb.testing``.

Owns: ``TestDatabase``, which loads a module file or package into an in-memory database in the calling process
(pytest, typically) and runs its reducers the way a server does (one transaction per call, the lifecycle
reducers, the module log), as a chosen identity and at a chosen time, on a clock of its own that only moves when
the test says so, so scheduled reducers run exactly when the test advances the clock past them.
May import: ``sats``, ``module`` and ``host`` (and what they build on).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spacetimedb.host.database import Database, DatabaseOptions, LaunchError
from spacetimedb.host.module_host import CallOutcome, HostOptions
from spacetimedb.keccak import keccak256
from spacetimedb.module import AuthCtx, ModuleDef, NoSuchReducerError, ReducerArgsError, package_program
from spacetimedb.module_log import SYSTEM
from spacetimedb.sats import ConnectionId, Identity, TimeDuration, Timestamp

__all__ = ["DEFAULT_START", "LaunchError", "LogLine", "ReducerError", "TestDatabase", "user_identity"]

# 2026-01-01T00:00:00Z: where a test database's clock starts unless told otherwise
DEFAULT_START = Timestamp(1_767_225_600 * 1_000_000)
_DATABASE_IDENTITY = Identity(0xC200 << 240 | 0xDB)


class ReducerError(Exception):
    """A reducer call that did not commit. ``str(error)`` and ``message`` are what a caller would be told;
    ``reducer`` is the reducer's name."""

    def __init__(self, reducer: str, message: str) -> None:
        super().__init__(message)
        self.reducer = reducer
        self.message = message


@dataclass(frozen=True, slots=True)
class LogLine:
    """One record of the module log: ``level`` is ``"INFO"``, ``"ERROR"``, ...; ``function`` the reducer (None for
    the database's own records); ``filename`` and ``line`` where module code wrote it."""

    level: str
    message: str
    function: str | None
    filename: str | None
    line: int | None


def user_identity(name: str) -> Identity:
    """A stable identity for a test user called ``name`` (the same name gives the same identity)."""
    digest = int.from_bytes(keccak256(name.encode("utf-8")), "big")
    return Identity(0xC200 << 240 | digest >> 16)


class TestDatabase:
    """A module running in memory, in this process.

    ``TestDatabase.load("module.py")`` (or a package directory) creates it and runs the module's ``init`` reducer
    at ``start`` as ``owner``; use it as a context manager, or call ``close()``. ``module`` is the module as
    loaded here: build arguments and compare rows with its classes (``db.module.Player``), not with those of a
    separate ``import`` of the same file.
    """

    __test__ = False  # not a pytest test class, despite its name

    def __init__(self, program: bytes, owner: Identity, start: Timestamp) -> None:
        """Prefer ``load``. Raises ``LaunchError`` if the module does not load or its ``init`` fails."""
        self.owner = owner
        self._now = start.micros
        self._connections = itertools.count(1)
        options = DatabaseOptions(host=HostOptions(clock=self._clock))
        self._database = Database.create(None, _DATABASE_IDENTITY, owner, program, options)
        self._host = self._database.host

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        owner: Identity | None = None,
        start: Timestamp | dt.datetime | None = None,
    ) -> TestDatabase:
        """Load the module at ``path`` (a ``.py`` file or a package directory). ``owner`` defaults to
        ``user_identity("owner")``; the clock starts at ``start`` (default 2026-01-01T00:00:00Z)."""
        source = Path(path)
        if not source.exists():
            raise FileNotFoundError(f"no module at {source}")
        program, _ = package_program(source)
        return cls(program, owner or user_identity("owner"), _timestamp(start, DEFAULT_START))

    # -- identity and time ---------------------------------------------------------------------------------------

    @property
    def module(self) -> types.ModuleType:
        """The loaded module: its table classes, ``@type`` classes and enums."""
        module = self._host.loaded.python_module
        if module is None:
            raise TypeError("TestDatabase runs Python modules: this program has no Python module")
        return module

    @property
    def module_def(self) -> ModuleDef:
        """The module's validated definition: its tables, reducers and types, as the server describes them."""
        return self._host.loaded.module_def

    @property
    def identity(self) -> Identity:
        """The database's own identity (``ctx.identity``; ``ctx.sender`` of scheduled reducers)."""
        return self._database.identity

    @staticmethod
    def user(name: str) -> Identity:
        """A stable identity for the test user ``name``."""
        return user_identity(name)

    @property
    def now(self) -> Timestamp:
        """The database's clock: the time of the next call unless it says ``at=``."""
        return Timestamp(self._now)

    def _clock(self) -> int:
        return self._now

    def advance(self, by: TimeDuration | dt.timedelta | float) -> int:
        """Move the clock forward by ``by`` (seconds, or a duration), running every scheduled reducer that falls
        due on the way, each at its own due time, in order. Returns how many ran; their failures are in
        ``logs()``, as a server's would be."""
        if isinstance(by, (int, float)):
            by = TimeDuration.from_seconds(by)
        elif isinstance(by, dt.timedelta):
            by = TimeDuration.from_timedelta(by)
        if by.micros < 0:
            raise ValueError(f"the clock only moves forward, not by {by}")
        return self.advance_to(Timestamp(self._now + by.micros))

    def advance_to(self, moment: Timestamp | dt.datetime) -> int:
        """Move the clock to ``moment``, as ``advance`` does."""
        target = _timestamp(moment, self.now).micros
        if target < self._now:
            raise ValueError(f"the clock only moves forward: it is {self.now}, not {Timestamp(target)}")
        ran = 0
        while (due := self._host.pop_due_call(target)) is not None:
            self._now = max(self._now, due.due_micros)
            self._on_host(lambda call=due: self._host.run_scheduled_call(call))
            ran += 1
        self._now = target
        return ran

    # -- calls ---------------------------------------------------------------------------------------------------

    def call(
        self,
        reducer: str,
        *args: Any,
        sender: Identity | None = None,
        at: Timestamp | dt.datetime | None = None,
        connection_id: ConnectionId | None = None,
    ) -> None:
        """Call ``reducer`` with ``args`` (Python values, as the reducer receives them) as ``sender`` (default:
        the owner), after moving the clock to ``at`` if given. Raises ``ReducerError`` with the caller's message
        if it does not commit. Unlike ``spacetime call``, this does not run the connect/disconnect reducers
        around the call: use ``connect``/``disconnect`` for those."""
        if at is not None:
            self.advance_to(at)
        who = self.owner if sender is None else sender
        try:
            encoded = self._encode_args(reducer, args)
        except (NoSuchReducerError, ReducerArgsError) as exc:
            raise ReducerError(reducer, str(exc)) from None
        outcome: CallOutcome = self._on_host(
            lambda: self._host.run_reducer(reducer, encoded, False, who, connection_id, None, AuthCtx(None))
        )
        if not outcome.ok:
            raise ReducerError(reducer, outcome.message or outcome.status)

    def _encode_args(self, reducer: str, args: tuple[Any, ...]) -> bytes:
        call = self._host.runtime.reducer_call(reducer)
        definition = call.reducer
        names = definition.arg_names
        if len(args) != len(names):
            raise ReducerArgsError(reducer, f"expected {len(names)} argument(s), got {len(args)}")
        canonical = []
        for name, value, convert in itertools.zip_longest(names, args, definition.arg_to_canonical):
            try:
                canonical.append(value if convert is None else convert(value))
            except (ValueError, TypeError, AttributeError) as exc:
                raise ReducerArgsError(reducer, str(exc), name) from None
        return call.encode_bsatn(tuple(canonical))

    def connect(self, sender: Identity | None = None) -> ConnectionId:
        """Connect a client as ``sender`` (default: the owner), running ``client_connected``; returns its
        connection id. Raises ``ReducerError`` if the module refuses the connection."""
        who = self.owner if sender is None else sender
        connection = ConnectionId(next(self._connections))
        outcome: CallOutcome = self._on_host(lambda: self._host.connect_now(who, connection, AuthCtx(None)))
        if not outcome.ok:
            raise ReducerError("client_connected", outcome.message or outcome.status)
        return connection

    def disconnect(self, connection_id: ConnectionId, sender: Identity | None = None) -> None:
        """Disconnect that client, running ``client_disconnected``; raises ``ReducerError`` if it failed (the
        client is gone all the same)."""
        who = self.owner if sender is None else sender
        outcome: CallOutcome = self._on_host(
            lambda: self._host.disconnect_now(who, connection_id, AuthCtx(None))
        )
        if not outcome.ok:
            raise ReducerError("client_disconnected", outcome.message or outcome.status)

    def _on_host(self, work: Any) -> Any:
        return self._database.on_host_thread(work)

    # -- reading -------------------------------------------------------------------------------------------------

    def rows(self, table: str) -> list[Any]:
        """Every row of ``table`` (public or private), as instances of the module's own row class."""
        try:
            definition = self._host.loaded.module_def.table(table)
        except KeyError:
            known = ", ".join(sorted(self._host.loaded.module_def.tables)) or "none"
            raise KeyError(f"the module has no table `{table}` (its tables: {known})") from None
        from_tuple = definition.row_class.__stdb_record__.from_tuple  # type: ignore[attr-defined]
        table_id = self._host.runtime.table_id(table)
        with self._host.db.read_tx() as tx:
            return [from_tuple(row) for row in tx.scan(table_id)]

    def logs(self) -> list[LogLine]:
        """The module log so far, oldest first: ``spacetimedb.log`` and ``print`` of module code, the error of
        every failed call, and the database's own records (``function`` None)."""
        return list(self._log_lines())

    def _log_lines(self) -> Iterator[LogLine]:
        for text in self._database.module_log.tail():
            record = json.loads(text)
            system = record.get("target") == SYSTEM
            yield LogLine(
                level=str(record["level"]).upper(),
                message=record.get("message", ""),
                function=None if system else record.get("function"),
                filename=None if system else record.get("filename"),
                line=record.get("line_number"),
            )

    # -- closing -------------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the database and unload the module."""
        self._database.shutdown()
        self._host.loaded.unload()

    def __enter__(self) -> TestDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _timestamp(value: Timestamp | dt.datetime | None, default: Timestamp) -> Timestamp:
    if value is None:
        return default
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError(
                f"a naive datetime has no time zone; give one, e.g. {value!r}.replace(tzinfo=UTC)"
            )
        return Timestamp.from_datetime(value)
    if isinstance(value, Timestamp):
        return value
    raise TypeError(f"expected a Timestamp or a datetime, got {type(value).__name__} {value!r}")
