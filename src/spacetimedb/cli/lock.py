"""The config lock: at most one process at a time reads-to-modify and writes ``cli.toml``.

Protocol
========

The lock of record is the file ``cli.lock`` beside the config (the config path with its suffix replaced by
``.lock``). Other tools and tests read it, so its format is fixed: ``key=value`` lines ::

    pid=<pid of the holder>
    host=<hostname of the holder>
    started=<RFC 3339 time the lock was taken>
    boot_id=<Linux boot id>          (optional, see "staleness")
    proc_start=<clock ticks>         (optional, see "staleness")

Taking the lock
    1. Create the parent directory if needed.
    2. ``open(O_CREAT | O_EXCL)`` the lock file. Exactly one process can succeed while the file exists.
    3. Write the owner lines with one ``write``, then check that the path still names the file we created
       (see "empty locks" for why it might not); if it does not, start again.
    Steps 2-3 run with SIGINT/SIGTERM/SIGHUP blocked, so an interrupt cannot leave an ownerless lock behind
    from a live process; the pending signal is delivered (and the lock released) right after.

Waiting
    If the file exists, read it and decide whether its owner is alive (below). A live holder makes us poll
    with exponential backoff (2 ms .. 50 ms, jittered so waiters do not move in lockstep), printing one
    "waiting for lock held by ..." line to stderr. We give up, with an error that names the holder, once
    *one* holder has kept the lock for ``SPACETIME_CONFIG_LOCK_TIMEOUT`` seconds (default 10) while we
    waited. When the lock changes hands the clock restarts, because the queue is moving: a hundred
    concurrent commands each take the lock for milliseconds, and none of them should fail because it was
    last in line. The total wait is still bounded, by ``TOTAL_WAIT_FACTOR`` times the timeout.

Staleness
    A lock is stale when its owner cannot be holding it any more:

    * its ``host`` is this host, and
    * the pid does not exist, or is a zombie, or ``boot_id`` differs from ours (written before a reboot),
      or ``proc_start`` (the process start time in ticks since boot, from ``/proc/<pid>/stat``) differs
      from the start time of the process now using that pid (the pid was reused).

    A lock from another host is never judged: we cannot see its processes, so we wait and then name it.
    None of these checks compares wall-clock times, so a clock step cannot make a live lock look stale.

Empty locks
    A holder is briefly between step 2 and step 3, and a process killed with SIGKILL right there, or a
    foreign tool, can leave a file without a complete owner. Such a lock is treated as live until its
    mtime is more than ``UNREADABLE_LOCK_GRACE_SECONDS`` away from now, then as stale. The holder's check
    in step 3 catches the case where a slow holder's empty file was broken before it wrote its owner; a
    holder stalled for the whole grace period between its own ``open`` and ``write`` *after* a breaker has
    re-read the file is the one interleaving this protocol cannot exclude.

Breaking a stale lock safely (never two holders)
    Two waiters can see the same dead holder at the same time. If both simply deleted the file, the
    slower one could delete the lock the faster one has just created. So breaking is serialized by a
    kernel lock: ``flock`` on the config *directory* (no extra file is left behind, and the kernel drops it
    if the breaker dies). Holding it, the breaker re-reads the lock file and re-judges it from scratch; only
    if it is still stale does it unlink it, then it retries step 2. While the stale file is in place nothing
    else can replace it: its owner is dead (owners only delete their own lock), creators fail on the existing
    name, and other breakers wait for the ``flock``. A new holder's file is never stale, so a breaker that
    arrives late re-reads it, leaves it alone and goes back to waiting.

Releasing
    The holder deletes the file only if the path still names its own file (same device and inode), again
    with the interrupt signals blocked. Release happens on every exit path: ``ConfigLock`` is a context
    manager, and the CLI turns SIGTERM/SIGHUP into exceptions (SIGINT already is one) so ``finally`` runs.
    SIGKILL cannot be caught; that is what staleness is for.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import os
import random
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from spacetimedb.cli.errors import CliError

TIMEOUT_ENV = "SPACETIME_CONFIG_LOCK_TIMEOUT"
DEFAULT_TIMEOUT_SECONDS = 10.0
# Long enough that a holder never really sits this long between two adjacent syscalls, short enough that an
# ownerless lock (SIGKILL between create and write) is broken well within the default wait.
UNREADABLE_LOCK_GRACE_SECONDS = 5.0
FIRST_POLL_SECONDS = 0.002
MAX_POLL_SECONDS = 0.05
TOTAL_WAIT_FACTOR = 6  # the lock changing hands restarts the timeout, but never beyond this many timeouts

_INTERRUPT_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP})


@dataclass(frozen=True)
class LockOwner:
    """Who holds a lock, as written in the lock file."""

    pid: int
    host: str
    started: datetime
    boot_id: str | None = None
    proc_start: int | None = None

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} since {format_rfc3339(self.started)}"

    def to_text(self) -> str:
        lines = [f"pid={self.pid}", f"host={self.host}", f"started={format_rfc3339(self.started)}"]
        if self.boot_id is not None:
            lines.append(f"boot_id={self.boot_id}")
        if self.proc_start is not None:
            lines.append(f"proc_start={self.proc_start}")
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, text: str) -> LockOwner | None:
        """The owner described by ``text``, or None if it is empty, partial or not ours."""
        if not text.endswith("\n"):
            return None  # a holder between open() and write(), or a torn write
        fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
        try:
            pid = int(fields["pid"])
            host = fields["host"]
            started = datetime.fromisoformat(fields["started"])
            proc_start = int(fields["proc_start"]) if "proc_start" in fields else None
        except (KeyError, ValueError):
            return None
        if pid <= 0 or not host:
            return None
        return cls(pid=pid, host=host, started=started, boot_id=fields.get("boot_id"), proc_start=proc_start)

    @classmethod
    def for_this_process(cls) -> LockOwner:
        return cls(
            pid=os.getpid(),
            host=this_host(),
            started=datetime.now(UTC),
            boot_id=this_boot_id(),
            proc_start=_own_start_ticks(os.getpid()),
        )


@dataclass(frozen=True)
class LockSnapshot:
    """What one look at an existing lock file showed."""

    owner: LockOwner | None
    mtime: float

    @property
    def holder_key(self) -> tuple[object, ...]:
        """Equal for two looks at the same holder's lock, different once the lock changed hands."""
        if self.owner is not None:
            return (self.owner.pid, self.owner.host, self.owner.started)
        return ("no owner", self.mtime)

    def describe_holder(self) -> str:
        if self.owner is not None:
            return self.owner.describe()
        modified = format_rfc3339_ts(self.mtime)
        return f"an unknown process (the lock file names no owner yet, modified {modified})"


class LockTimeoutError(CliError):
    """The lock stayed held by someone else for the whole wait."""


def lock_path_for(config_path: Path) -> Path:
    """``cli.toml`` -> ``cli.lock``, beside it."""
    lock_path = config_path.with_suffix(".lock")
    if lock_path == config_path:  # a config named "*.lock" must not lock itself
        lock_path = config_path.with_name(config_path.name + ".lock")
    return lock_path


def timeout_from_env(environ: os._Environ[str] | dict[str, str] = os.environ) -> float:
    raw = environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also rejects NaN
        raise CliError(
            f"{TIMEOUT_ENV}={raw!r} is not a number of seconds",
            hint=f"set {TIMEOUT_ENV} to a non-negative number, e.g. 10",
        )
    return value


class ConfigLock:
    """The exclusive lock on one config file; see the module docstring for the protocol."""

    def __init__(
        self,
        path: Path,
        *,
        timeout: float | None = None,
        on_wait: Callable[[str], None] | None = None,
        on_break: Callable[[str], None] | None = None,
    ) -> None:
        self.path = path
        self.timeout = timeout_from_env() if timeout is None else timeout
        self._on_wait = on_wait or _print_to_stderr
        self._on_break = on_break or _print_to_stderr
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> ConfigLock:
        try:
            self.acquire()
        except BaseException:
            # A signal delivered right after the create (see _signals_deferred) lands here, lock taken.
            self.release()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def acquire(self) -> None:
        if self.held:
            raise RuntimeError(f"{self.path} is already held by this ConfigLock")
        _create_parent_directory(self.path)
        wait = _Wait(self.timeout)
        while True:
            if self._try_create():
                return
            snapshot = read_snapshot(self.path)
            if snapshot is None:
                continue  # released between our create and our read: try again at once
            if is_stale(snapshot) and self._break_if_still_stale(wait.deadline):
                continue
            wait.observe(snapshot)
            if wait.expired():
                raise self._timeout_error(snapshot, wait.waited())
            if not wait.announced:
                self._on_wait(f"waiting for lock {self.path} held by {snapshot.describe_holder()}")
                wait.announced = True
            wait.sleep()

    def release(self) -> None:
        if self._fd is None:
            return
        with _signals_deferred():
            fd, self._fd = self._fd, None
            try:
                if _names_same_file(self.path, os.fstat(fd)):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self.path)
            finally:
                os.close(fd)

    def _try_create(self) -> bool:
        owner_text = LockOwner.for_this_process().to_text().encode()
        with _signals_deferred():
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            except FileExistsError:
                return False
            except OSError as error:
                raise CliError(
                    f"cannot create lock file {self.path}: {error.strerror}",
                    hint=f"check that {self.path.parent} is writable",
                ) from None
            try:
                _write_all(fd, owner_text)
                if not _names_same_file(self.path, os.fstat(fd)):
                    os.close(fd)  # our ownerless file was judged abandoned and broken: not ours any more
                    return False
            except BaseException:
                with contextlib.suppress(OSError):
                    if _names_same_file(self.path, os.fstat(fd)):
                        os.unlink(self.path)
                os.close(fd)
                raise
            self._fd = fd
        return True

    def _break_if_still_stale(self, deadline: float) -> bool:
        """Delete the lock file if, looked at again under the breakers' mutex, it is still stale."""
        with _directory_mutex(self.path.parent, deadline) as got_mutex:
            if not got_mutex:
                return False
            snapshot = read_snapshot(self.path)
            if snapshot is None:
                return True
            if not is_stale(snapshot):
                return False
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        self._on_break(f"removed stale lock {self.path} left by {snapshot.describe_holder()}")
        return True

    def _timeout_error(self, snapshot: LockSnapshot, waited: float) -> LockTimeoutError:
        holder = snapshot.describe_holder()
        if snapshot.owner is not None and snapshot.owner.host != this_host():
            hint = f"it was taken on another host; if no spacetime command runs there, delete {self.path}"
        else:
            hint = f"wait for that command to finish; if no spacetime command is running, delete {self.path}"
        return LockTimeoutError(
            f"config lock {self.path} is still held by {holder} (waited {waited:.1f} s)",
            hint=hint,
        )


class _Wait:
    """The waiting side of ``acquire``: backoff, and a deadline that restarts when the holder changes."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.started = time.monotonic()
        self.give_up_at = self.started + timeout * TOTAL_WAIT_FACTOR
        self.holder: tuple[object, ...] | None = None
        self.holder_seen_at = self.started
        self.poll = FIRST_POLL_SECONDS
        self.announced = False

    @property
    def deadline(self) -> float:
        return min(self.holder_seen_at + self.timeout, self.give_up_at)

    def observe(self, snapshot: LockSnapshot) -> None:
        if snapshot.holder_key != self.holder:
            if self.holder is not None:
                self.holder_seen_at = time.monotonic()
            self.holder = snapshot.holder_key

    def expired(self) -> bool:
        return time.monotonic() >= self.deadline

    def waited(self) -> float:
        return time.monotonic() - self.started

    def sleep(self) -> None:
        remaining = max(0.0, self.deadline - time.monotonic())
        time.sleep(min(remaining, self.poll * random.uniform(0.5, 1.5)))
        self.poll = min(self.poll * 2, MAX_POLL_SECONDS)


def read_snapshot(path: Path) -> LockSnapshot | None:
    """The lock file's owner and mtime, or None if there is no lock file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        mtime = os.fstat(fd).st_mtime
        raw = os.read(fd, 4096)
    finally:
        os.close(fd)
    return LockSnapshot(owner=LockOwner.parse(raw.decode("utf-8", errors="replace")), mtime=mtime)


def is_stale(snapshot: LockSnapshot, now: float | None = None) -> bool:
    owner = snapshot.owner
    if owner is None:
        age = (time.time() if now is None else now) - snapshot.mtime
        return abs(age) > UNREADABLE_LOCK_GRACE_SECONDS
    if owner.host != this_host():
        return False
    return not _owner_process_alive(owner)


def _owner_process_alive(owner: LockOwner) -> bool:
    try:
        os.kill(owner.pid, 0)
    except (ProcessLookupError, OverflowError):  # OverflowError: no pid that large can exist
        return False
    except PermissionError:
        pass  # exists, belongs to another user
    if owner.boot_id is not None and this_boot_id() not in (None, owner.boot_id):
        return False
    status = _proc_stat_fields(owner.pid)
    if status is None:
        return True  # no /proc (not Linux) or it exited just now; the next poll will see
    state, start_ticks = status
    if state in ("Z", "X"):
        return False  # exited, not yet reaped by its parent: it holds nothing
    return owner.proc_start is None or owner.proc_start == start_ticks


def this_host() -> str:
    return os.uname().nodename


@functools.cache
def this_boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def process_start_ticks(pid: int) -> int | None:
    status = _proc_stat_fields(pid)
    return None if status is None else status[1]


@functools.cache
def _own_start_ticks(pid: int) -> int | None:
    # Keyed by pid so that a forked child (new pid) does not inherit its parent's value.
    return process_start_ticks(pid)


def _proc_stat_fields(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks since boot) from /proc/<pid>/stat, or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may itself contain spaces and parentheses.
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        return fields[0], int(fields[19])
    except (IndexError, ValueError):
        return None


def format_rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def format_rfc3339_ts(timestamp: float) -> str:
    return format_rfc3339(datetime.fromtimestamp(timestamp, UTC))


def _print_to_stderr(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _create_parent_directory(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as error:
        raise CliError(f"cannot create config directory {path.parent}: {error.strerror}") from None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _names_same_file(path: Path, stat: os.stat_result) -> bool:
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return False
    return (current.st_dev, current.st_ino) == (stat.st_dev, stat.st_ino)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold back SIGINT/SIGTERM/SIGHUP so that lock-file bookkeeping is never cut in half."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _INTERRUPT_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextlib.contextmanager
def _directory_mutex(directory: Path, deadline: float) -> Iterator[bool]:
    """flock on the directory: serializes stale-lock breakers; yields False if not obtained by deadline."""
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        while True:
            try:
                fcntl.flock(dir_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(FIRST_POLL_SECONDS)
            except OSError as error:
                if error.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EBADF):  # e.g. NFS
                    raise CliError(
                        f"cannot break a stale config lock in {directory}: its file system has no flock",
                        hint="delete the stale lock file by hand",
                    ) from None
                raise
        yield True
    finally:
        os.close(dir_fd)  # also drops the flock
