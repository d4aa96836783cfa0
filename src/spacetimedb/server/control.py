"""The control database: which databases exist, who owns them, and their names.

It is itself a ``RelationalDB`` (``{data_dir}/control``), with three tables:
``database(identity pk, owner, program_hash, created, updated)``, ``dns(name pk, identity)`` and
``database_lock(identity pk)`` (the databases their owner locked against deletion, as upstream's ``spacetime
lock``; created on first open by a version that knows it, so older data directories gain it). Names follow
SpacetimeDB's rule ``^[a-z0-9]+(-[a-z0-9]+)*$``. Every change waits until it is durable.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from spacetimedb.datastore import IndexDef, MutTx, TableDef
from spacetimedb.db import RelationalDB
from spacetimedb.sats import BYTES, IDENTITY, STRING, TIMESTAMP, Identity, Timestamp

NAME_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
MAX_NAME_LENGTH = 64
LOCK_TABLE = "database_lock"


class NameError_(ValueError):
    """A database name is invalid or taken."""


@dataclass(frozen=True, slots=True)
class DatabaseRecord:
    identity: Identity
    owner: Identity
    program_hash: bytes
    created: Timestamp
    updated: Timestamp


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not name or len(name) > MAX_NAME_LENGTH or not NAME_PATTERN.match(name):
        raise NameError_(
            f"invalid database name {name!r}: use lowercase letters, digits and single dashes "
            f"(like `my-game-2`), at most {MAX_NAME_LENGTH} characters"
        )
    return name


class ControlDB:
    """Names and owners of databases. Thread-safe."""

    def __init__(self, db: RelationalDB) -> None:
        self.db = db
        self._lock = threading.Lock()
        self.created = False  # its tables were made by this open: it knew of no database before
        with db.mut_tx() as tx:
            if tx.table_id("database") is None:
                self.created = True
                tx.create_table(
                    TableDef(
                        "database",
                        [
                            ("identity", IDENTITY),
                            ("owner", IDENTITY),
                            ("program_hash", BYTES),
                            ("created", TIMESTAMP),
                            ("updated", TIMESTAMP),
                        ],
                        indexes=[IndexDef((0,)), IndexDef((1,))],
                        unique_constraints=[((0,), None)],
                        primary_key=0,
                        public=False,
                    )
                )
                tx.create_table(
                    TableDef(
                        "dns",
                        [("name", STRING), ("identity", IDENTITY)],
                        indexes=[IndexDef((0,)), IndexDef((1,))],
                        unique_constraints=[((0,), None)],
                        primary_key=0,
                        public=False,
                    )
                )
        with db.mut_tx() as tx:
            if tx.table_id(LOCK_TABLE) is None:
                tx.create_table(
                    TableDef(
                        LOCK_TABLE,
                        [("identity", IDENTITY)],
                        indexes=[IndexDef((0,))],
                        unique_constraints=[((0,), None)],
                        primary_key=0,
                        public=False,
                    )
                )
        with db.read_tx() as tx:
            database_table = tx.table_id("database")
            lock_table = tx.table_id(LOCK_TABLE)
            assert lock_table is not None
            self._lock_table: int = lock_table
            self._lock_pk = tx.schema(lock_table).indexes[0].index_id
            dns_table = tx.table_id("dns")
            assert database_table is not None and dns_table is not None  # created above when missing
            database_schema = tx.schema(database_table)
            dns_schema = tx.schema(dns_table)
        self._database: int = database_table
        self._dns: int = dns_table
        self._database_pk = database_schema.indexes[0].index_id
        self._database_owner = database_schema.indexes[1].index_id
        self._dns_pk = dns_schema.indexes[0].index_id
        self._dns_identity = dns_schema.indexes[1].index_id

    @classmethod
    def open(cls, data_dir: Path | None) -> ControlDB:
        if data_dir is None:
            return cls(RelationalDB.in_memory())
        return cls(RelationalDB.open(data_dir / "control"))

    def close(self) -> None:
        self.db.close()

    def _write(self, work: Callable[[MutTx], None]) -> None:
        with self._lock:
            tx = self.db.begin_mut_tx()
            try:
                work(tx)
            except BaseException:
                self.db.rollback(tx)
                raise
            result = self.db.commit_tx(tx)
        if result.offset is not None:
            self.db.wait_durable(result.offset, 30)

    # -- reads --------------------------------------------------------------------------------------------------

    def get(self, identity: Identity) -> DatabaseRecord | None:
        with self.db.read_tx() as tx:
            row = tx.find(self._database, self._database_pk, identity)
        return None if row is None else DatabaseRecord(*row)

    def resolve(self, name: str) -> Identity | None:
        with self.db.read_tx() as tx:
            row = tx.find(self._dns, self._dns_pk, name)
        return None if row is None else row[1]

    def names_of(self, identity: Identity) -> list[str]:
        with self.db.read_tx() as tx:
            return sorted(row[0] for row in tx.seek(self._dns, self._dns_identity, identity))

    def identities(self) -> set[Identity]:
        """Every database recorded."""
        with self.db.read_tx() as tx:
            return {row[0] for row in tx.scan(self._database)}

    def is_locked(self, identity: Identity) -> bool:
        with self.db.read_tx() as tx:
            return tx.find(self._lock_table, self._lock_pk, identity) is not None

    def owned_by(self, owner: Identity) -> list[Identity]:
        with self.db.read_tx() as tx:
            return sorted(row[0] for row in tx.seek(self._database, self._database_owner, owner))

    # -- writes -------------------------------------------------------------------------------------------------

    def register(self, identity: Identity, owner: Identity, program_hash: bytes, name: str | None) -> None:
        """Record a new database (and its name) or its new program."""
        now = Timestamp.now()

        def work(tx: MutTx) -> None:
            existing = tx.find(self._database, self._database_pk, identity)
            if existing is None:
                tx.insert(self._database, (identity, owner, program_hash, now, now))
            else:
                tx.update(
                    self._database, self._database_pk, (identity, existing[1], program_hash, existing[3], now)
                )
            if name is not None:
                self._add_name(tx, name, identity)

        self._write(work)

    def _add_name(self, tx: MutTx, name: str, identity: Identity) -> None:
        validate_name(name)
        holder = tx.find(self._dns, self._dns_pk, name)
        if holder is not None and holder[1] != identity:
            raise NameError_(f"the name `{name}` is already taken by another database")
        if holder is None:
            tx.insert(self._dns, (name, identity))

    def add_name(self, identity: Identity, name: str) -> None:
        self._write(lambda tx: self._add_name(tx, name, identity))

    def set_names(self, identity: Identity, names: list[str]) -> None:
        for name in names:
            validate_name(name)

        def work(tx: MutTx) -> None:
            for row in list(tx.seek(self._dns, self._dns_identity, identity)):
                tx.delete(self._dns, row)
            for name in names:
                self._add_name(tx, name, identity)

        self._write(work)

    def set_locked(self, identity: Identity, locked: bool) -> None:
        """Lock (or unlock) a database against deletion; doing either twice is harmless."""

        def work(tx: MutTx) -> None:
            row = tx.find(self._lock_table, self._lock_pk, identity)
            if locked and row is None:
                tx.insert(self._lock_table, (identity,))
            elif not locked and row is not None:
                tx.delete(self._lock_table, row)

        self._write(work)

    def remove(self, identity: Identity) -> None:
        def work(tx: MutTx) -> None:
            lock = tx.find(self._lock_table, self._lock_pk, identity)
            if lock is not None:
                tx.delete(self._lock_table, lock)
            for row in list(tx.seek(self._dns, self._dns_identity, identity)):
                tx.delete(self._dns, row)
            record = tx.find(self._database, self._database_pk, identity)
            if record is not None:
                tx.delete(self._database, record)

        self._write(work)
