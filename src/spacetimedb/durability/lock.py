"""The database directory lock: one process per database directory.

`DirectoryLock(directory)` takes an exclusive, non-blocking `flock` on `directory/db.lock` and writes the
holder's pid into it. The kernel releases the lock when the process dies, so a crash leaves no stale
lock; the pid only serves the error message of whoever comes second.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from spacetimedb.commitlog.pidlock import LockHeldError, acquire_pid_lock, release_pid_lock

from .errors import DatabaseLockedError

LOCK_FILE_NAME = "db.lock"


class DirectoryLock:
    """Exclusive ownership of a database directory for as long as it is held."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_FILE_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> DirectoryLock:
        """Take the lock or raise `DatabaseLockedError` naming the holder's pid. Never blocks."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this DirectoryLock")
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            self._fd = acquire_pid_lock(self.path)
        except LockHeldError as held:
            raise DatabaseLockedError(self.path, held.holder_pid) from None
        return self

    def release(self) -> None:
        """Give the lock up (no-op if not held)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            release_pid_lock(fd)

    def __enter__(self) -> DirectoryLock:
        return self.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"DirectoryLock({str(self.directory)!r}, held={self.held})"
