"""The database directory lock: one holder at a time, the holder's pid in the error, gone with the process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from spacetimedb.durability import DatabaseLockedError, DirectoryLock

HOLDER = textwrap.dedent(
    """
    import sys
    from spacetimedb.durability import DirectoryLock
    lock = DirectoryLock(sys.argv[1]).acquire()
    print("locked", flush=True)
    sys.stdin.read()  # hold the lock until the parent closes our stdin
    lock.release()
    """
)


def _start_holder(directory) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(directory)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert holder.stdout.readline() == b"locked\n", holder.stderr.read()
    return holder


def _stop(holder: subprocess.Popen) -> None:
    for stream in (holder.stdin, holder.stdout, holder.stderr):
        stream.close()
    holder.wait(timeout=30)


def test_second_process_gets_an_error_naming_the_holders_pid(tmp_path):
    holder = _start_holder(tmp_path)
    try:
        with pytest.raises(DatabaseLockedError) as info:
            DirectoryLock(tmp_path).acquire()
        assert info.value.holder_pid == holder.pid
        assert f"pid {holder.pid}" in str(info.value)
        assert str(tmp_path / "db.lock") in str(info.value)
    finally:
        _stop(holder)
    with DirectoryLock(tmp_path) as lock:  # released when the holder let go
        assert lock.held
        assert (tmp_path / "db.lock").read_text() == f"{os.getpid()}\n"


def test_lock_dies_with_a_killed_holder(tmp_path):
    holder = _start_holder(tmp_path)
    holder.kill()
    _stop(holder)
    # The pid file still names the dead process, but the flock went with it.
    assert (tmp_path / "db.lock").read_text().strip() == str(holder.pid)
    with DirectoryLock(tmp_path) as lock:
        assert lock.held


def test_second_lock_in_the_same_process_is_refused(tmp_path):
    with DirectoryLock(tmp_path):
        with pytest.raises(DatabaseLockedError) as info:
            DirectoryLock(tmp_path).acquire()
        assert info.value.holder_pid == os.getpid()
    DirectoryLock(tmp_path).acquire().release()


def test_acquire_twice_on_one_object_and_release_semantics(tmp_path):
    lock = DirectoryLock(tmp_path / "new" / "db")
    assert not lock.held
    lock.acquire()
    with pytest.raises(RuntimeError, match="already held"):
        lock.acquire()
    lock.release()
    lock.release()  # no-op
    assert not lock.held
    assert (tmp_path / "new" / "db" / "db.lock").read_text() == ""
