"""Backup archives: what a hot backup of a database holds, how it is written from a database directory, and how
an archive is verified (and unpacked for a restore) before anything trusts it.

Owns the archive format (``docs/backup-format.md``): an uncompressed tar stream holding the module, the newest
snapshot, the commitlog up to a durable offset and, last, a manifest with that offset and a SHA-256 per member.
Writing runs in a database's (throw-away) worker, confined to the database directory; verifying runs wherever the
bytes are (the server on an upload, the CLI on a download).
May import: ``spacetimedb.commitlog``, ``spacetimedb.durability`` and the shared modules.
"""

from .archive import (
    ARCHIVE_VERSION,
    ArchiveError,
    BackupPlan,
    Manifest,
    plan_backup,
    unpack_archive,
    verify_archive,
    write_archive,
)

__all__ = [
    "ARCHIVE_VERSION",
    "ArchiveError",
    "BackupPlan",
    "Manifest",
    "plan_backup",
    "unpack_archive",
    "verify_archive",
    "write_archive",
]
