"""Shared helpers: load a module from source text, create its tables in a fresh datastore, run reducers."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from spacetimedb.datastore import Datastore
from spacetimedb.module import LoadedModule, ModuleRuntime, create_module_tables, load_module
from spacetimedb.sats import ConnectionId, Identity, Timestamp

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "examples" / "chat" / "quickstart_chat.py"
REMINDERS = ROOT / "examples" / "scheduler" / "reminders.py"

DATABASE = Identity(0xDB)
ALICE = Identity(0xA11CE)
BOB = Identity(0xB0B)

HEADER = """\
from __future__ import annotations
import enum
from typing import Annotated, Optional
from spacetimedb import *
from spacetimedb import type as stdb_type
"""


def load_source(source: str, *, header: bool = True, name: str = "module.py") -> LoadedModule:
    text = (HEADER if header else "") + textwrap.dedent(source)
    return load_module(text.encode(), name=name)


class Db:
    """A datastore with a module's tables, and a runtime bound to it."""

    def __init__(self, loaded: LoadedModule) -> None:
        self.loaded = loaded
        self.datastore = Datastore()
        tx = self.datastore.begin_mut_tx()
        create_module_tables(tx, loaded.module_def)
        self.datastore.commit(tx)
        self.runtime = ModuleRuntime(loaded)
        self.bind()
        self.clock = 1_700_000_000_000_000

    def bind(self) -> None:
        tx = self.datastore.begin_tx()
        try:
            self.runtime.bind(tx)  # type: ignore[arg-type]
        finally:
            tx.release()

    def call(
        self, reducer: str, *args: Any, sender: Identity = ALICE, connection_id: ConnectionId | None = None
    ) -> Any:
        """Run a reducer with canonical args in its own transaction: commit on success, roll back and re-raise."""
        self.clock += 1
        tx = self.datastore.begin_mut_tx()
        try:
            result = self.runtime.invoke(
                reducer, tx, sender, connection_id, Timestamp(self.clock), DATABASE, tuple(args)
            )
        except BaseException:
            self.datastore.rollback(tx)
            raise
        self.datastore.commit(tx)
        return result

    def rows(self, table: str) -> list[tuple[Any, ...]]:
        tx = self.datastore.begin_tx()
        try:
            table_id = tx.table_id(table)
            assert table_id is not None
            return sorted(tx.scan(table_id), key=repr)
        finally:
            tx.release()

    def with_ctx(self, sender: Identity = ALICE) -> Any:
        """A context over an open transaction, for direct handle calls (``close`` rolls back)."""
        tx = self.datastore.begin_mut_tx()
        self.clock += 1
        ctx = self.runtime.begin_call(tx, sender, None, Timestamp(self.clock), DATABASE)
        return _OpenCall(self, tx, ctx)


class _OpenCall:
    def __init__(self, db: Db, tx: Any, ctx: Any) -> None:
        self.db, self.tx, self.ctx = db, tx, ctx

    def __enter__(self) -> Any:
        return self.ctx

    def __exit__(self, *exc: object) -> None:
        self.db.runtime.end_call()
        self.db.datastore.rollback(self.tx)
