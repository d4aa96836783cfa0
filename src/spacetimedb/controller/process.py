"""One worker process as the server sees it: spawning it, its channel, its requests, its death.

A worker is spawned fresh (``python -I -m spacetimedb.host.worker``, never forked from the server's memory),
with an empty environment (but ``SPACETIMEDB_PURE_PYTHON`` when it is set), in its own session, with only three
descriptors beyond /dev/null: its end of the channel (a Unix stream socket pair), the shared deadline page, and a
pipe for its stderr (the last lines are kept to explain a crash, and never written to the server's own log,
which a module could otherwise flood; the one exception is the stack dump a stalled worker is asked for just
before it is killed, bounded in lines and once per death).

Everything the worker sends is checked by ``seam.FrameReader``; a message that does not decode, or that makes no
sense where it arrives, kills the worker.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from spacetimedb import native
from spacetimedb.protocol import seam
from spacetimedb.protocol.deadline import DEADLINE_SLOT_BYTES, DeadlineSlot

log = logging.getLogger(__name__)
T = TypeVar("T")

# the channel's write buffer past which the server stops reading the clients of that database
WRITE_HIGH_WATER = 8 << 20
STDERR_TAIL_LINES = 40
# of the stacks a worker prints before it is killed for stalling (``seam.STACK_DUMP_SIGNAL``), the lines logged
STACK_DUMP_LINES = 200
STACK_DUMP_WAIT_SECONDS = 0.5
CHANNEL_DRAIN_SECONDS = 2.0
# messages of one worker handled per turn of the event loop before the others get theirs
MESSAGES_PER_TURN = 256
_SOCKET_BUFFER = 4 << 20


@dataclass(frozen=True)
class SandboxSettings:
    """How a worker confines itself (see ``spacetimedb.sandbox``)."""

    memory_bytes: int = 2 << 30
    max_open_files: int = 256
    landlock: bool = True
    seccomp: bool = True


class WorkerGone(RuntimeError):
    """The worker died (or was killed); ``str()`` says why, ``disk_full`` whether a full disk was the cause."""

    def __init__(self, reason: str, disk_full: bool = False) -> None:
        super().__init__(reason)
        self.disk_full = disk_full


class RequestFailed(RuntimeError):
    """The worker could not serve a request; ``str()`` is its reason."""


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "it is still running"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        hint = " (out of memory, or killed from outside)" if -returncode == signal.SIGKILL else ""
        return f"it was killed by {name}{hint}"
    return f"it exited with status {returncode}"


def worker_environment(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """A worker's whole environment: nothing of the server's, except the choice of the pure-Python hot path
    (``spacetimedb.native``), so that a pure-Python run is pure in its workers too."""
    value = environ.get(native.PURE_ENV)
    return {} if value is None else {native.PURE_ENV: value}


class _ChannelProtocol(asyncio.Protocol):
    """Reads a worker's channel, a bounded number of messages per turn of the event loop: a worker that floods
    its channel gets its fair share of the server's loop and no more."""

    def __init__(self, worker: WorkerProcess) -> None:
        self._worker = worker
        self._reader = seam.to_server_reader()
        self._transport: asyncio.Transport | None = None
        self._paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # create_unix_connection gives a protocol a stream transport, which reads and writes
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._turn(data)

    def _turn(self, data: bytes = b"") -> None:
        worker = self._worker
        try:
            for message in self._reader.feed(data, MESSAGES_PER_TURN):
                worker.on_message(message)
        except seam.SeamViolation as violation:
            worker.kill(f"it broke the worker protocol: {violation}", "protocol_violation")
            return
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if self._reader.has_message():
            if not self._paused:
                self._paused = True
                transport.pause_reading()
            asyncio.get_running_loop().call_soon(self._turn)
        elif self._paused:
            self._paused = False
            transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._worker.channel_closed()

    def pause_writing(self) -> None:
        self._worker.writable.clear()

    def resume_writing(self) -> None:
        self._worker.writable.set()


class WorkerProcess:
    """A spawned worker. ``on_message`` handles everything that is not an answer to a request."""

    def __init__(self, label: str, directory: Path | None, sandbox: SandboxSettings) -> None:
        self.label = label
        self.directory = directory
        self.sandbox = sandbox
        self.process: asyncio.subprocess.Process | None = None
        self.deadline: DeadlineSlot | None = None
        self.writable = asyncio.Event()
        self.writable.set()
        self.handler: Callable[[Any], None] = self._unexpected
        self.started_at = time.monotonic()
        self.kill_reason: str | None = None
        self.kill_cause = ""
        self.panic_reason: str | None = None
        self.disk_full = False  # it panicked because its disk was full
        self.stopping = False  # the supervisor asked it to stop
        self.exited = asyncio.Event()
        self._channel_closed = asyncio.Event()
        self.returncode: int | None = None
        self._transport: asyncio.Transport | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        # work sent and not finished (requests, client frames, connects), and since when the worker made none
        self.outstanding = 0
        self._busy_since = 0.0
        self._egress_in_flight = 0  # procedures' HTTP requests the server is performing for this worker
        self._allowances: list[float] = []
        self._death_listeners: list[Callable[[str], None]] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._stack_dump: list[str] | None = None  # the stderr lines since a stack dump was asked for

    # -- spawning --------------------------------------------------------------------------------------------------

    async def spawn(self) -> None:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        for sock in (ours, theirs):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SOCKET_BUFFER)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _SOCKET_BUFFER)
        deadline_fd = os.memfd_create("spacetimedb-deadline")
        try:
            os.ftruncate(deadline_fd, DEADLINE_SLOT_BYTES)
            self.deadline = DeadlineSlot.from_fd(deadline_fd)
            self.process = await asyncio.create_subprocess_exec(
                *self._command(theirs.fileno(), deadline_fd),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                pass_fds=(theirs.fileno(), deadline_fd),
                env=worker_environment(),
                cwd=str(self.directory) if self.directory is not None else "/",
                start_new_session=True,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
            os.close(deadline_fd)
        transport, _ = await loop.create_unix_connection(lambda: _ChannelProtocol(self), sock=ours)
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        self._transport = transport
        self._tasks.append(asyncio.ensure_future(self._drain_stderr()))
        self._tasks.append(asyncio.ensure_future(self._wait_exit()))

    def _command(self, channel_fd: int, deadline_fd: int) -> list[str]:
        command = [
            sys.executable,
            "-I",
            "-X",
            "utf8",
            "-m",
            "spacetimedb.host.worker",
            "--channel-fd",
            str(channel_fd),
            "--deadline-fd",
            str(deadline_fd),
            "--memory-bytes",
            str(self.sandbox.memory_bytes),
            "--max-open-files",
            str(self.sandbox.max_open_files),
            "--parent-pid",
            str(os.getpid()),
        ]
        if self.directory is not None:
            command += ["--database-dir", str(self.directory)]
        if not self.sandbox.landlock:
            command.append("--no-landlock")
        if not self.sandbox.seccomp:
            command.append("--no-seccomp")
        return command

    async def _drain_stderr(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        stream = self.process.stderr
        try:
            while True:
                line = await stream.readline()
                if not line:
                    return
                text = line.decode("utf-8", "replace").rstrip()[:500]
                self._stderr.append(text)
                if self._stack_dump is not None and len(self._stack_dump) < STACK_DUMP_LINES:
                    self._stack_dump.append(text)
        except (ValueError, asyncio.LimitOverrunError):  # an endless line: keep draining, keep nothing
            while await stream.read(1 << 16):
                pass

    async def _wait_exit(self) -> None:
        assert self.process is not None
        returncode = await self.process.wait()
        # what it sent before it exited is still to be read: its death counts once its channel is drained
        try:
            await asyncio.wait_for(self._channel_closed.wait(), CHANNEL_DRAIN_SECONDS)
        except TimeoutError:
            pass
        self.returncode = returncode
        self._gone(self.death_reason())

    # -- messages --------------------------------------------------------------------------------------------------

    def send(self, message: Any) -> None:
        if self._transport is None or self._transport.is_closing():
            raise WorkerGone(self.death_reason())
        self._transport.write(seam.encode_to_worker(message))

    async def request(
        self,
        make: Callable[[int], Any],
        answer: type[T],
        timeout: float | None = None,
        allowance: float | None = None,
    ) -> T:
        """Send ``make(request_id)`` and wait for its ``answer`` (``RequestFailed`` or ``WorkerGone`` otherwise;
        an answer of another type is a protocol violation). ``allowance``: how long the worker may go without
        finishing anything while this request waits, when that is longer than usual (a module update)."""
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        if allowance is not None:
            self._allowances.append(allowance)
        self.work_sent()
        try:
            self.send(make(request_id))
            result = await asyncio.wait_for(future, timeout)
        except asyncio.CancelledError:
            if request_id in self._pending and self.alive:  # nobody waits any more: let the worker stop it
                with contextlib.suppress(WorkerGone):
                    self.send(seam.Cancel(request_id))
            raise
        finally:
            if self._pending.pop(request_id, None) is not None:
                self.work_done(1)
            if allowance is not None:
                self._allowances.remove(allowance)
        if not isinstance(result, answer):
            self.kill(
                f"it broke the worker protocol: a {type(result).__name__} answered a request for {answer.__name__}"
            )
            raise WorkerGone(self.death_reason())
        return result

    def on_message(self, message: Any) -> None:
        request_id = getattr(message, "request", None)
        if request_id is not None:
            # done now, as it is read (the waiter resumes a turn of the loop later: a stall check in between
            # would count the work as still waiting)
            future = self._pending.pop(request_id, None)
            if future is None:
                return  # an answer nobody waits for any more (it timed out)
            self.work_done(1)
            if not future.done():
                if isinstance(message, seam.RequestFailed):
                    future.set_exception(RequestFailed(message.message))
                else:
                    future.set_result(message)
            return
        if isinstance(message, seam.Panicked):
            self.panic_reason = message.reason
            self.disk_full = message.disk_full
            return
        self.handler(message)

    def _unexpected(self, message: Any) -> None:
        raise seam.SeamViolation(f"unexpected {type(message).__name__}")

    # -- progress ---------------------------------------------------------------------------------------------------

    def work_sent(self) -> None:
        if not self.outstanding:
            self._busy_since = time.monotonic()
        self.outstanding += 1

    def work_done(self, count: int) -> None:
        """The worker finished ``count`` pieces of work (what it says is checked no further: it can only
        mislead about its own database)."""
        self.outstanding = max(0, self.outstanding - count)
        self._busy_since = time.monotonic()

    def stalled_for(self, now: float) -> float:
        """How long the worker has had work waiting and finished none of it (0 when it has none, or while a
        procedure's HTTP request is in flight: it waits for the network, not for the worker, and the request has
        a timeout of its own)."""
        if not self.outstanding or self._egress_in_flight:
            return 0.0
        return now - self._busy_since

    def egress_started(self) -> None:
        self._egress_in_flight += 1

    def egress_finished(self) -> None:
        self._egress_in_flight -= 1
        self._busy_since = time.monotonic()

    def stall_allowance(self, usual: float) -> float:
        return max(usual, *self._allowances) if self._allowances else usual

    def on_death(self, listener: Callable[[str], None]) -> None:
        self._death_listeners.append(listener)

    # -- death -----------------------------------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self.returncode is None and self.kill_reason is None

    def kill(self, reason: str, cause: str = "killed") -> None:
        """Kill the worker now (SIGKILL); ``reason`` becomes the reason of everything that fails with it, and
        ``cause`` (a word: ``time_budget``, ``stalled``, ``protocol_violation``...) what metrics count it as."""
        if self.kill_reason is None:
            self.kill_reason = reason
            self.kill_cause = cause
            log.warning("killing the worker of %s: %s", self.label, reason)
        if self.process is not None and self.process.returncode is None:
            try:
                self.process.kill()
            except ProcessLookupError:
                pass
        if self._transport is not None:
            self._transport.abort()

    def kill_with_stack_dump(self, reason: str, cause: str) -> None:
        """``kill``, once the worker has printed its threads' stacks, which are logged: for a worker that
        finished nothing, where it was stuck (module code that stopped its own time limits, or a bug here)."""
        if not self.alive or self._stack_dump is not None or self.process is None:
            return  # dead, or a dump is already under way
        self._stack_dump = []
        self._tasks.append(asyncio.ensure_future(self._dump_stacks_then_kill(self.process, reason, cause)))

    async def _dump_stacks_then_kill(
        self, process: asyncio.subprocess.Process, reason: str, cause: str
    ) -> None:
        waiting = self.outstanding
        try:
            process.send_signal(seam.STACK_DUMP_SIGNAL)
            await asyncio.sleep(STACK_DUMP_WAIT_SECONDS)  # written at once, from the signal handler
        except ProcessLookupError:
            pass
        finally:
            dump, self._stack_dump = self._stack_dump or [], None
            self.kill(reason, cause)
        log.warning(
            "the worker of %s was stopped for stalling (work waiting: %d); its threads were at:\n%s",
            self.label,
            waiting,
            "\n".join(f"  | {line}" for line in dump) or "  (it printed no stacks)",
        )

    def channel_closed(self) -> None:
        self.writable.set()  # nobody may wait for room on a dead channel
        self._channel_closed.set()

    @property
    def death_cause(self) -> str:
        """What a death that was not asked for counts as in metrics: a word."""
        if self.kill_reason is not None:
            return self.kill_cause
        if self.panic_reason is not None:
            return "disk_full" if self.disk_full else "panic"
        if self.returncode is not None and self.returncode < 0:
            return "signal"
        return "exited"

    def death_reason(self) -> str:
        if self.kill_reason is not None:
            return self.kill_reason
        if self.panic_reason is not None:
            return f"its database failed: {self.panic_reason}"
        reason = describe_exit(self.returncode)
        tail = self.stderr_tail()
        return f"{reason}; its last output: {tail}" if tail else reason

    def stderr_tail(self, lines: int = 6) -> str:
        """The last lines the worker wrote to stderr, with the first line of a fatal error kept in front of
        them (a crash prints its cause first, then a long stack)."""
        kept = [line for line in self._stderr if line.strip()]
        tail = kept[-lines:]
        fatal = next((line for line in kept if line.startswith("Fatal Python error")), None)
        if fatal is not None and fatal not in tail:
            tail = [fatal, "...", *tail]
        return " | ".join(tail)

    def _gone(self, reason: str) -> None:
        if not self.exited.is_set():
            self.exited.set()
            if self._transport is not None:
                self._transport.abort()
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(WorkerGone(reason, self.disk_full))
            for listener in self._death_listeners:
                try:
                    listener(reason)
                except Exception:
                    log.exception("a worker death listener failed")
            if self.deadline is not None:
                self.deadline.close()
                self.deadline = None

    @property
    def stopped_cleanly(self) -> bool:
        """It exited with status 0 after being asked to (any other end is a crash)."""
        return self.stopping and self.returncode == 0 and self.kill_reason is None

    async def stop(self, timeout: float = 30.0) -> None:
        """Ask the worker to finish its queued work and exit; kill it if it does not within ``timeout``."""
        self.stopping = True
        if self.alive:
            try:
                self.send(seam.Shutdown())
            except WorkerGone:
                pass
            try:
                await asyncio.wait_for(self.exited.wait(), timeout)
            except TimeoutError:
                self.kill(f"it did not stop within {timeout:g}s")
        if self.process is not None and self.process.returncode is None:
            self.kill(self.kill_reason or "stopping")
        await self.exited.wait()
        for task in self._tasks:
            await asyncio.gather(task, return_exceptions=True)
