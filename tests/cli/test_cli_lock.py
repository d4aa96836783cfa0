"""The config lock: file format, waiting, staleness, safe breaking, and mutual exclusion across processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from spacetimedb.cli.errors import CliError
from spacetimedb.cli.lock import (
    TIMEOUT_ENV,
    UNREADABLE_LOCK_GRACE_SECONDS,
    ConfigLock,
    LockOwner,
    LockTimeoutError,
    lock_path_for,
    process_start_ticks,
    this_boot_id,
    this_host,
    timeout_from_env,
)


@pytest.fixture
def lock_path(tmp_path: Path) -> Path:
    return tmp_path / "config" / "cli.lock"


def quiet_lock(
    path: Path, timeout: float = 5.0, waits: list[str] | None = None, breaks: list[str] | None = None
):
    return ConfigLock(
        path,
        timeout=timeout,
        on_wait=(waits if waits is not None else []).append,
        on_break=(breaks if breaks is not None else []).append,
    )


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def write_owner(path: Path, **fields: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{key}={value}\n" for key, value in fields.items()))


def test_lock_path_is_beside_the_config_with_lock_suffix(tmp_path: Path):
    assert lock_path_for(tmp_path / "cli.toml") == tmp_path / "cli.lock"
    assert lock_path_for(tmp_path / "weird.lock") == tmp_path / "weird.lock.lock"
    assert lock_path_for(tmp_path / "noext") == tmp_path / "noext.lock"


def test_held_lock_file_names_its_owner_and_release_deletes_it(lock_path: Path):
    with quiet_lock(lock_path) as lock:
        assert lock.held
        text = lock_path.read_text()
        fields = dict(line.split("=", 1) for line in text.splitlines())
        assert fields["pid"] == str(os.getpid())
        assert fields["host"] == this_host()
        started = datetime.fromisoformat(fields["started"])
        assert abs((datetime.now(UTC) - started).total_seconds()) < 60
        assert LockOwner.parse(text) is not None
    assert not lock_path.exists()
    assert not lock.held


def test_lock_is_released_when_the_block_raises(lock_path: Path):
    with pytest.raises(KeyboardInterrupt), quiet_lock(lock_path):
        raise KeyboardInterrupt
    assert not lock_path.exists()


def test_second_taker_waits_then_fails_naming_the_holder(lock_path: Path):
    waits: list[str] = []
    with quiet_lock(lock_path):
        started = time.monotonic()
        with pytest.raises(LockTimeoutError) as raised:
            quiet_lock(lock_path, timeout=0.3, waits=waits).acquire()
        assert time.monotonic() - started >= 0.3
    assert f"pid {os.getpid()} on {this_host()} since " in raised.value.message
    assert str(lock_path) in raised.value.message
    assert raised.value.hint
    assert len(waits) == 1
    assert waits[0].startswith(
        f"waiting for lock {lock_path} held by pid {os.getpid()} on {this_host()} since "
    )


def test_waiter_takes_the_lock_once_the_holder_releases(lock_path: Path):
    holder = quiet_lock(lock_path)
    holder.acquire()
    releaser = threading.Timer(0.2, holder.release)
    releaser.start()
    waits: list[str] = []
    with quiet_lock(lock_path, timeout=10, waits=waits):
        assert LockOwner.parse(lock_path.read_text()).pid == os.getpid()
    releaser.join()
    assert len(waits) == 1
    assert not lock_path.exists()


def test_zero_timeout_fails_at_once(lock_path: Path):
    with quiet_lock(lock_path), pytest.raises(LockTimeoutError):
        quiet_lock(lock_path, timeout=0).acquire()


def test_lock_of_a_dead_process_on_this_host_is_broken_without_waiting(lock_path: Path):
    pid = dead_pid()
    write_owner(lock_path, pid=pid, host=this_host(), started="2020-01-01T00:00:00Z")
    waits: list[str] = []
    breaks: list[str] = []
    with quiet_lock(lock_path, timeout=0, waits=waits, breaks=breaks):
        assert LockOwner.parse(lock_path.read_text()).pid == os.getpid()
    assert waits == []
    assert len(breaks) == 1 and f"pid {pid} on {this_host()}" in breaks[0]
    assert list(lock_path.parent.iterdir()) == []


def test_lock_of_an_unreaped_zombie_is_stale(lock_path: Path):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 30
        while Path(f"/proc/{child.pid}/stat").exists() and "Z" not in _state(child.pid):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        write_owner(lock_path, pid=child.pid, host=this_host(), started="2020-01-01T00:00:00Z")
        with quiet_lock(lock_path, timeout=0):
            pass
    finally:
        child.wait()


def _state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "gone"
    return stat[stat.rfind(")") + 2 :].split()[0]


@pytest.fixture
def live_process():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield child
    child.kill()
    child.wait()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_live_pid_with_other_start_time_is_a_reused_pid_and_stale(lock_path: Path, live_process):
    ticks = process_start_ticks(live_process.pid)
    assert ticks is not None
    write_owner(
        lock_path,
        pid=live_process.pid,
        host=this_host(),
        started="2020-01-01T00:00:00Z",
        proc_start=ticks - 1,
    )
    with quiet_lock(lock_path, timeout=0):
        pass


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_live_pid_with_its_own_start_time_holds_the_lock(lock_path: Path, live_process):
    ticks = process_start_ticks(live_process.pid)
    write_owner(
        lock_path, pid=live_process.pid, host=this_host(), started="2020-01-01T00:00:00Z", proc_start=ticks
    )
    with pytest.raises(LockTimeoutError, match=f"pid {live_process.pid}"):
        quiet_lock(lock_path, timeout=0.1).acquire()
    assert lock_path.exists()


@pytest.mark.skipif(this_boot_id() is None, reason="needs a Linux boot id")
def test_lock_from_before_a_reboot_is_stale(lock_path: Path, live_process):
    write_owner(
        lock_path, pid=live_process.pid, host=this_host(), started="2020-01-01T00:00:00Z", boot_id="old-boot"
    )
    with quiet_lock(lock_path, timeout=0):
        pass


def test_lock_from_another_host_is_never_broken(lock_path: Path):
    write_owner(lock_path, pid=dead_pid(), host="some-other-host", started="2020-01-01T00:00:00Z")
    with pytest.raises(LockTimeoutError) as raised:
        quiet_lock(lock_path, timeout=0.1).acquire()
    assert "on some-other-host since 2020-01-01T00:00:00" in raised.value.message
    assert "another host" in raised.value.hint
    assert lock_path.exists()


@pytest.mark.parametrize("content", ["", "pid=", "pid=4242\nhost=", "garbage without newline"])
def test_ownerless_lock_counts_as_held_during_the_grace_period(lock_path: Path, content: str):
    lock_path.parent.mkdir(parents=True)
    lock_path.write_text(content)
    with pytest.raises(LockTimeoutError, match="names no owner yet"):
        quiet_lock(lock_path, timeout=0.1).acquire()
    assert lock_path.read_text() == content


def test_ownerless_lock_older_than_the_grace_period_is_broken(lock_path: Path):
    lock_path.parent.mkdir(parents=True)
    lock_path.write_text("")
    old = time.time() - UNREADABLE_LOCK_GRACE_SECONDS - 5
    os.utime(lock_path, (old, old))
    with quiet_lock(lock_path, timeout=0):
        assert LockOwner.parse(lock_path.read_text()).pid == os.getpid()


def test_release_never_deletes_a_lock_file_that_is_not_ours(lock_path: Path):
    lock = quiet_lock(lock_path)
    lock.acquire()
    lock_path.unlink()
    write_owner(lock_path, pid=1, host="elsewhere", started="2020-01-01T00:00:00Z")
    lock.release()
    assert lock_path.exists()


def test_timeout_comes_from_the_environment():
    assert timeout_from_env({}) == 10.0
    assert timeout_from_env({TIMEOUT_ENV: "2.5"}) == 2.5
    assert timeout_from_env({TIMEOUT_ENV: "0"}) == 0.0
    for bad in ("soon", "-1", "nan"):
        with pytest.raises(CliError, match=TIMEOUT_ENV):
            timeout_from_env({TIMEOUT_ENV: bad})


WORKER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from spacetimedb.cli.lock import ConfigLock

    lock_path, log_path, name, crash = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4] == "1"
    lock = ConfigLock(lock_path, timeout=120, on_wait=lambda m: None, on_break=lambda m: None)
    lock.acquire()
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(log, f"enter {name}\\n".encode())
    time.sleep(0.005)
    os.write(log, f"exit {name}\\n".encode())
    if crash:
        os._exit(0)  # dies holding the lock: the next worker must break it
    lock.release()
    """
)


@pytest.mark.timeout(240)
def test_processes_never_hold_the_lock_together_even_while_breaking_stale_locks(tmp_path: Path):
    lock_path = tmp_path / "cli.lock"
    log_path = tmp_path / "log"
    write_owner(lock_path, pid=dead_pid(), host=this_host(), started="2020-01-01T00:00:00Z")
    workers = 24
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(lock_path), str(log_path), str(n), str(int(n % 3 == 0))]
        )
        for n in range(workers)
    ]
    # Reap only at the end: until then crashed holders are zombies, which must also count as dead.
    codes = [process.wait(timeout=200) for process in processes]
    assert codes == [0] * workers
    lines = log_path.read_text().splitlines()
    assert len(lines) == 2 * workers
    for enter, leave in zip(lines[::2], lines[1::2], strict=True):
        assert enter.startswith("enter ") and leave == "exit " + enter.removeprefix("enter "), lines
    assert sorted(int(line.split()[1]) for line in lines[::2]) == list(range(workers))


def test_a_late_breaker_leaves_a_fresh_live_lock_alone(lock_path: Path):
    # The race: two waiters saw the same dead holder; the first broke it and took the lock. The second
    # must re-judge what is there now, under the breakers' mutex, instead of deleting it.
    breaker = quiet_lock(lock_path)
    with quiet_lock(lock_path):
        live_content = lock_path.read_text()
        assert breaker._break_if_still_stale(time.monotonic() + 1) is False
        assert lock_path.read_text() == live_content


def test_breakers_wait_for_the_directory_mutex(lock_path: Path):
    import fcntl

    write_owner(lock_path, pid=dead_pid(), host=this_host(), started="2020-01-01T00:00:00Z")
    other_breaker = os.open(lock_path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(other_breaker, fcntl.LOCK_EX)
        assert quiet_lock(lock_path)._break_if_still_stale(time.monotonic() + 0.1) is False
        assert lock_path.exists()
    finally:
        os.close(other_breaker)
    assert quiet_lock(lock_path)._break_if_still_stale(time.monotonic() + 1) is True
    assert not lock_path.exists()
