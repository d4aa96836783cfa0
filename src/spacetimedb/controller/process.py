"""One worker process as the server sees it: spawning it, its channel, its requests, its death.

A worker is spawned fresh (``python -I -m spacetimedb.host.worker``, never forked from the server's memory),
with an empty environment, in its own session, with only three descriptors beyond /dev/null: its end of the
channel (a Unix stream socket pair), the shared deadline page, and a pipe for its stderr (the last lines are kept
to explain a crash, and never written to the server's own log, which a module could otherwise flood).

Everything the worker sends is checked by ``seam.FrameReader``; a message that does not decode, or that makes no
sense where it arrives, kills the worker.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from spacetimedb.protocol import seam

log = logging.getLogger(__name__)
T = TypeVar("T")

# the channel's write buffer past which the server stops reading the clients of that database
WRITE_HIGH_WATER = 8 << 20
STDERR_TAIL_LINES = 40
_SOCKET_BUFFER = 4 << 20


@dataclass(frozen=True)
class SandboxSettings:
    """How a worker confines itself (see ``spacetimedb.sandbox``)."""

    memory_bytes: int = 2 << 30
    max_open_files: int = 256
    landlock: bool = True
    seccomp: bool = True


class WorkerGone(RuntimeError):
    """The worker died (or was killed); ``str()`` says why."""


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


class _ChannelProtocol(asyncio.Protocol):
    def __init__(self, worker: WorkerProcess) -> None:
        self._worker = worker
        self._reader = seam.to_server_reader()

    def data_received(self, data: bytes) -> None:
        try:
            messages = self._reader.feed(data)
        except seam.SeamViolation as violation:
            self._worker.kill(f"it broke the worker protocol: {violation}")
            return
        for message in messages:
            try:
                self._worker.on_message(message)
            except seam.SeamViolation as violation:
                self._worker.kill(f"it broke the worker protocol: {violation}")
                return

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
        self.deadline: seam.DeadlineSlot | None = None
        self.writable = asyncio.Event()
        self.writable.set()
        self.handler: Callable[[Any], None] = self._unexpected
        self.started_at = time.monotonic()
        self.kill_reason: str | None = None
        self.panic_reason: str | None = None
        self.exited = asyncio.Event()
        self.returncode: int | None = None
        self._transport: asyncio.Transport | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self._death_listeners: list[Callable[[str], None]] = []
        self._tasks: list[asyncio.Task[Any]] = []

    # -- spawning --------------------------------------------------------------------------------------------------

    async def spawn(self) -> None:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        for sock in (ours, theirs):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SOCKET_BUFFER)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _SOCKET_BUFFER)
        deadline_fd = os.memfd_create("spacetimedb-deadline")
        try:
            os.ftruncate(deadline_fd, seam.DEADLINE_SLOT_BYTES)
            self.deadline = seam.DeadlineSlot.from_fd(deadline_fd)
            self.process = await asyncio.create_subprocess_exec(
                *self._command(theirs.fileno(), deadline_fd),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                pass_fds=(theirs.fileno(), deadline_fd),
                env={},
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
        self._transport = transport  # type: ignore[assignment]
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
                self._stderr.append(line.decode("utf-8", "replace").rstrip()[:500])
        except (ValueError, asyncio.LimitOverrunError):  # an endless line: keep draining, keep nothing
            while await stream.read(1 << 16):
                pass

    async def _wait_exit(self) -> None:
        assert self.process is not None
        self.returncode = await self.process.wait()
        self._gone(self.death_reason())

    # -- messages --------------------------------------------------------------------------------------------------

    def send(self, message: Any) -> None:
        if self._transport is None or self._transport.is_closing():
            raise WorkerGone(self.death_reason())
        self._transport.write(seam.encode_to_worker(message))

    async def request(self, make: Callable[[int], Any], answer: type[T], timeout: float | None = None) -> T:
        """Send ``make(request_id)`` and wait for its ``answer`` (``RequestFailed`` or ``WorkerGone`` otherwise;
        an answer of another type is a protocol violation)."""
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            self.send(make(request_id))
            result = await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(request_id, None)
        if not isinstance(result, answer):
            self.kill(f"it broke the worker protocol: a {type(result).__name__} answered a request for {answer.__name__}")
            raise WorkerGone(self.death_reason())
        return result

    def on_message(self, message: Any) -> None:
        request_id = getattr(message, "request", None)
        if request_id is not None:
            future = self._pending.get(request_id)
            if future is None:
                return  # an answer nobody waits for any more (it timed out)
            if not future.done():
                if isinstance(message, seam.RequestFailed):
                    future.set_exception(RequestFailed(message.message))
                else:
                    future.set_result(message)
            return
        if isinstance(message, seam.Panicked):
            self.panic_reason = message.reason
            return
        self.handler(message)

    def _unexpected(self, message: Any) -> None:
        raise seam.SeamViolation(f"unexpected {type(message).__name__}")

    def on_death(self, listener: Callable[[str], None]) -> None:
        self._death_listeners.append(listener)

    # -- death -----------------------------------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self.returncode is None and self.kill_reason is None

    def kill(self, reason: str) -> None:
        """Kill the worker now (SIGKILL); ``reason`` becomes the reason of everything that fails with it."""
        if self.kill_reason is None:
            self.kill_reason = reason
            log.warning("killing the worker of %s: %s", self.label, reason)
        if self.process is not None and self.process.returncode is None:
            try:
                self.process.kill()
            except ProcessLookupError:
                pass
        if self._transport is not None:
            self._transport.abort()

    def channel_closed(self) -> None:
        self.writable.set()  # nobody may wait for room on a dead channel

    def death_reason(self) -> str:
        if self.kill_reason is not None:
            return self.kill_reason
        if self.panic_reason is not None:
            return f"its database failed: {self.panic_reason}"
        reason = describe_exit(self.returncode)
        tail = self.stderr_tail()
        return f"{reason}; its last output: {tail}" if tail else reason

    def stderr_tail(self, lines: int = 6) -> str:
        kept = [line for line in self._stderr if line.strip()][-lines:]
        return " | ".join(kept)

    def _gone(self, reason: str) -> None:
        if not self.exited.is_set():
            self.exited.set()
            if self._transport is not None:
                self._transport.abort()
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(WorkerGone(reason))
            for listener in self._death_listeners:
                try:
                    listener(reason)
                except Exception:
                    log.exception("a worker death listener failed")
            if self.deadline is not None:
                self.deadline.close()
                self.deadline = None

    async def stop(self, timeout: float = 30.0) -> None:
        """Ask the worker to finish its queued work and exit; kill it if it does not within ``timeout``."""
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
