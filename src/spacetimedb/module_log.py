"""The module log of one database: JSON lines on disk, bounded, readable from the end and followable.

Each record is one JSON object per line, in SpacetimeDB's shape: ``{"level": "Info", "ts": <µs since epoch>,
"target"?, "filename"?, "line_number"?, "function"?, "message": ...}`` with levels Error, Warn, Info, Debug,
Trace and Panic; ``function`` is the reducer that logged. Lines the host writes itself use ``__spacetimedb__``
as target, filename and function.

Files live in ``{database}/module_logs/``: ``current.log`` is appended to; when it passes ``max_file_bytes``
it becomes ``previous.log`` (replacing the older one), so the log never holds more than twice that. Writes are
not fsynced (logs are diagnostics, not data). In-memory databases keep the same bound in a ring of lines.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

LEVELS = ("Error", "Warn", "Info", "Debug", "Trace", "Panic")
SYSTEM = "__spacetimedb__"
DEFAULT_MAX_FILE_BYTES = 8 << 20

Follower = Callable[[str], None]


def make_record(
    level: str,
    message: str,
    *,
    function: str | None = None,
    filename: str | None = None,
    line_number: int | None = None,
    target: str | None = None,
    ts_micros: int | None = None,
) -> dict[str, Any]:
    if level not in LEVELS:
        raise ValueError(f"unknown log level {level!r}")
    record: dict[str, Any] = {
        "level": level,
        "ts": ts_micros if ts_micros is not None else time.time_ns() // 1000,
    }
    if target is not None:
        record["target"] = target
    if filename is not None:
        record["filename"] = filename
    if line_number is not None:
        record["line_number"] = line_number
    if function is not None:
        record["function"] = function
    record["message"] = message
    return record


class ModuleLog:
    """Appends records, serves the last N lines, and pushes new lines to followers."""

    def __init__(self, directory: Path | None, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> None:
        self._directory = directory
        self._max_file_bytes = max_file_bytes
        self._lock = threading.Lock()
        self._followers: list[Follower] = []
        self._memory: deque[str] = deque()
        self._memory_bytes = 0
        self._file: TextIO | None = None
        self._file_size = 0
        self.dropped = 0  # lines that could not be written (a full disk)
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            self._open_current()

    @property
    def current_path(self) -> Path | None:
        return None if self._directory is None else self._directory / "current.log"

    def _open_current(self) -> None:
        assert self._directory is not None
        path = self._directory / "current.log"
        if path.is_symlink() or (path.exists() and not path.is_file()):
            path.unlink()  # module code may have put something else there: the log is ours to write
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for appends
        self._file_size = path.stat().st_size

    def write(self, record: dict[str, Any]) -> None:
        self.write_line(record_line(record))

    def write_line(self, line: str) -> None:
        """Append one record already turned into its line (``record_line``)."""
        with self._lock:
            if self._directory is None:
                self._append_memory(line)
            else:
                self._append_file(line)
            followers = list(self._followers)
        for follower in followers:
            try:
                follower(line)
            except Exception:  # a broken follower must not break logging
                self.unfollow(follower)

    def system(self, level: str, message: str) -> None:
        self.write_line(system_line(level, message))

    def _append_memory(self, line: str) -> None:
        self._memory.append(line)
        self._memory_bytes += len(line) + 1
        while self._memory_bytes > 2 * self._max_file_bytes and self._memory:
            self._memory_bytes -= len(self._memory.popleft()) + 1

    def _append_file(self, line: str) -> None:
        assert self._file is not None and self._directory is not None
        data = line + "\n"
        try:
            if self._file_size + len(data) > self._max_file_bytes and self._file_size:
                self._file.close()
                os.replace(self._directory / "current.log", self._directory / "previous.log")
                self._open_current()
            self._file.write(data)
            self._file.flush()
        except OSError:  # a full disk must not stop the database over a diagnostic: the line is lost
            self.dropped += 1
            return
        self._file_size += len(data.encode("utf-8"))

    def tail(self, lines: int | None = None) -> list[str]:
        """The last ``lines`` lines (all when None), oldest first."""
        with self._lock:
            if self._directory is not None:
                return read_log_dir(self._directory, lines)
            kept = list(self._memory)
        return kept if lines is None else kept[-lines:] if lines > 0 else []

    def follow(self, follower: Follower) -> None:
        with self._lock:
            self._followers.append(follower)

    def unfollow(self, follower: Follower) -> None:
        with self._lock:
            if follower in self._followers:
                self._followers.remove(follower)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
            self._followers.clear()


def record_line(record: dict[str, Any]) -> str:
    # module code may log lone surrogates, which UTF-8 cannot hold: keep them, escaped
    return escape_surrogates(json.dumps(record, ensure_ascii=False, separators=(",", ":")))


def escape_surrogates(text: str) -> str:
    """``text`` with lone surrogates (which module code or a client's JSON escapes can put in a string, and which
    no UTF-8 file, channel or WebSocket can carry) written as backslash escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def system_line(level: str, message: str) -> str:
    """A record of the system (not of module code), as its line."""
    return record_line(make_record(level, message, target=SYSTEM, filename=SYSTEM, function=SYSTEM))


def read_log_dir(directory: Path, lines: int | None = None) -> list[str]:
    """Read a stopped database's log straight from disk (in its worker: the files are the module's to
    tamper with, so only a confined process may open them)."""
    kept: list[str] = []
    for name in ("previous.log", "current.log"):
        path = directory / name
        try:
            if path.exists():
                kept.extend(path.read_text(encoding="utf-8", errors="replace").splitlines())
        except (OSError, ValueError) as exc:
            kept.append(system_line("Error", f"the log file {name} could not be read: {exc}"))
    return kept if lines is None else kept[-lines:] if lines > 0 else []
