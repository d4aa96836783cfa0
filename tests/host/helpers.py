"""Shared helpers for host tests: programs, identities, and waiting without sleeping blindly."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from spacetimedb.host.module_host import CallOutcome, ModuleHost
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
