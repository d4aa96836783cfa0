"""The HostController: the supervisor, in the server process, of every database's worker process.

Owns: spawning workers (fresh, through exec, never forked from the server), their channels and requests, the
hard deadline (killing a worker whose module code or query overruns budget + grace), what happens when a worker
dies (its clients closed with the reason, a relaunch from disk on next access, "failed" after repeated failed
launches), publishing through a throw-away validation worker, deleting, and each running database's durable
offset and client routing; and the ``databases`` directory (``directories``): a clear that a crash cannot cut in
half, and the start-up recovery that finishes or undoes what a crash interrupted. It never imports, compiles or
runs module code, and never opens a file inside a database's directory.
May import: ``spacetimedb.sats``, ``spacetimedb.protocol``, ``spacetimedb.backup`` (archive checks) and the shared modules (``module_log``, ``fsutil``).
"""

from .backups import BackupFailed, BackupStream, RestoreRefused, RestoreResult
from .durable import DurabilityLost, DurableOffset
from .process import RequestFailed, SandboxSettings, WorkerGone, WorkerProcess, describe_exit
from .running import ClientSink, RunningDatabase
from .supervisor import (
    DatabaseFailedError,
    DatabaseNotFoundError,
    DatabaseUnavailableError,
    HostController,
    MigrationPolicyError,
    MigrationRefusedError,
    PastRefused,
    PublishError,
    PublishResult,
    WorkerSettings,
    migration_token,
)

__all__ = [
    "BackupFailed",
    "BackupStream",
    "RestoreRefused",
    "RestoreResult",
    "ClientSink",
    "DatabaseFailedError",
    "DatabaseNotFoundError",
    "DatabaseUnavailableError",
    "DurabilityLost",
    "DurableOffset",
    "HostController",
    "MigrationPolicyError",
    "MigrationRefusedError",
    "PastRefused",
    "PublishError",
    "PublishResult",
    "RequestFailed",
    "RunningDatabase",
    "SandboxSettings",
    "WorkerGone",
    "WorkerProcess",
    "WorkerSettings",
    "migration_token",
    "describe_exit",
]
