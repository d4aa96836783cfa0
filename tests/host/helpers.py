"""Shared helpers for host tests: programs, identities, and waiting without sleeping blindly."""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from spacetimedb.host.channel import Channel, Outbox
from spacetimedb.host.database import Database, DatabaseOptions, LaunchError
from spacetimedb.host.module_host import CallOutcome, ModuleHost
from spacetimedb.module import MigrationPlan, program_hash
from spacetimedb.protocol import seam
from spacetimedb.sats import Identity

ROOT = Path(__file__).resolve().parents[2]
CHAT = (ROOT / "examples" / "chat" / "quickstart_chat.py").read_bytes()
REMINDERS = (ROOT / "examples" / "scheduler" / "reminders.py").read_bytes()

DB = Identity(0xC2 << 248 | 0xD8)
OWNER = Identity(0xC2 << 248 | 0x01)


def ident(n: int) -> Identity:
    return Identity(0xC2 << 248 | 0x1000 | n)


def call(host: ModuleHost, reducer: str, *args: Any, sender: Identity = OWNER, **kwargs: Any) -> CallOutcome:
    return host.call_reducer_sync(reducer, list(args), sender=sender, json_args=True, **kwargs)


def connect(host: ModuleHost, who: Identity, connection_id: Any) -> CallOutcome:
    future: Future[CallOutcome] = Future()
    host.connect_client(who, connection_id, future.set_result)
    return future.result(10)


def disconnect(host: ModuleHost, who: Identity, connection_id: Any) -> CallOutcome:
    future: Future[CallOutcome] = Future()
    host.disconnect_client(who, connection_id, future.set_result)
    return future.result(10)


def rows(host: ModuleHost, table: str) -> list[tuple[Any, ...]]:
    with host.db.read_tx() as tx:
        return sorted(tx.scan(tx.table_id(table)), key=repr)


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def open_fds() -> set[str]:
    """Targets of this process's open file descriptors."""
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.add(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass
    return out


class LocalDatabases:
    """What the HostController does for databases, done in the test process with ``Database`` objects and no
    worker processes (``root=None``: in memory), so the host layer is tested on its own."""

    def __init__(self, root: Path | None, options: DatabaseOptions | None = None) -> None:
        self.root = root
        self.options = options or DatabaseOptions()
        self.open: dict[Identity, Database] = {}

    def database_dir(self, identity: Identity) -> Path:
        assert self.root is not None
        return self.root / "databases" / identity.to_hex()

    def exists(self, identity: Identity) -> bool:
        if self.root is None:
            return identity in self.open
        return (self.database_dir(identity) / "clog").is_dir()

    def publish(
        self, identity: Identity, owner: Identity, program: bytes, clear: bool = False
    ) -> tuple[str, MigrationPlan | None]:
        if clear:
            self.delete(identity)
        if not self.exists(identity):
            path = None if self.root is None else self.database_dir(identity)
            self.open[identity] = Database.create(path, identity, owner, program, self.options)
            return "created", None
        database = self.database(identity)
        if database.host.loaded.program_hash == program_hash(program):
            return "unchanged", None
        return "updated", database.on_host_thread(lambda: database.update(program))

    def database(self, identity: Identity) -> Database:
        database = self.open.get(identity)
        if database is None or not database.host.alive:
            if not self.exists(identity) or self.root is None:
                raise LaunchError(f"no such database {identity.to_hex()}")
            database = self.open[identity] = Database.open(
                self.database_dir(identity), identity, self.options
            )
        return database

    def get_or_launch(self, identity: Identity) -> ModuleHost:
        return self.database(identity).host

    def delete(self, identity: Identity) -> None:
        database = self.open.pop(identity, None)
        if database is not None:
            database.shutdown()
        if self.root is not None and self.database_dir(identity).exists():
            shutil.rmtree(self.database_dir(identity))

    def shutdown(self) -> None:
        for database in self.open.values():
            database.shutdown()
        self.open.clear()


class ServerEnd:
    """The server's end of a worker channel: what the hub's outbox sends, read back as seam messages."""

    def __init__(self, database: Database) -> None:
        self._ours, self._theirs = socket.socketpair()
        self._ours.settimeout(10)
        self._reader = seam.to_server_reader()
        self._messages: list[Any] = []
        self.outbox = Outbox(Channel(self._theirs))
        database.host.add_batch_listener(self.outbox.flush)  # as the worker flushes after each batch

    def __enter__(self) -> ServerEnd:
        return self

    def __exit__(self, *exc: object) -> None:
        # (a flush after this finds the channel closed, as a worker whose server is gone)
        self._ours.close()
        self._theirs.close()

    def next(self) -> Any:
        while not self._messages:
            data = self._ours.recv(1 << 16)
            assert data, "the channel closed"
            self._messages.extend(self._reader.feed(data))
        return self._messages.pop(0)
