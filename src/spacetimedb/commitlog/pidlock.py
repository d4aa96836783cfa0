"""An exclusive advisory lock on a file that records the holder's pid.

`flock` locks belong to an open file description, so a second open of the same file conflicts even inside
one process, and the kernel drops the lock when the holder dies: no stale locks after a crash. The pid in
the file is only there to make the "already locked" error useful.

The file is never deleted: unlinking a lock file races with a third process that opens the old name.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class LockHeldError(Exception):
    """The lock is held by someone else; `holder_pid` is what the file says (None if unreadable)."""

    def __init__(self, path: Path, holder_pid: int | None) -> None:
        self.path = path
        self.holder_pid = holder_pid
        super().__init__(f"{path} is locked by pid {holder_pid}")


def acquire_pid_lock(path: Path) -> int:
    """Take the lock without blocking and write our pid into the file; return the open descriptor."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_pid(fd)
        os.close(fd)
        raise LockHeldError(path, holder) from None
    except BaseException:
        os.close(fd)
        raise
    pid_line = f"{os.getpid()}\n".encode()
    # Write before truncating so that a reader never sees an empty file while we hold the lock.
    try:
        os.pwrite(fd, pid_line, 0)
        os.ftruncate(fd, len(pid_line))
    except OSError:  # a full disk: the lock holds all the same, only the holder's pid goes unnamed
        pass
    return fd


def release_pid_lock(fd: int) -> None:
    """Clear the pid and drop the lock (closing the descriptor releases the flock)."""
    try:
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii").strip()
        return int(text) if text else None
    except (OSError, UnicodeDecodeError, ValueError):
        return None
