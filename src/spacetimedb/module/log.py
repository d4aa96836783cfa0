"""Module logging: ``spacetimedb.log.info(...)`` etc. and ``print()`` inside a module.

Lines go to the *log sink* of the current thread: the module host sets one (``set_sink``) on its reducer
thread so that every line lands in that database's module log; without one, lines go to stderr. A sink is
called as ``sink(level, message, filename, line)`` with ``level`` one of ``LEVELS`` (SpacetimeDB's names:
Error, Warn, Info, Debug, Trace) and ``filename`` the path within the module program.
"""

from __future__ import annotations

import builtins
import logging
import sys
import threading
from collections.abc import Callable
from typing import Any

LogSink = Callable[[str, str, "str | None", "int | None"], None]

# SpacetimeDB's level names, as module log records carry them
ERROR = "Error"
WARN = "Warn"
INFO = "Info"
DEBUG = "Debug"
TRACE = "Trace"
LEVELS = (ERROR, WARN, INFO, DEBUG, TRACE)

_local = threading.local()
# code file name -> the path shown in logs (the loader compiles module files under unique names)
_display_names: dict[str, str] = {}


def register_display_name(code_filename: str, shown: str | None) -> None:
    """Show ``code_filename`` as ``shown`` in log lines (None forgets it)."""
    if shown is None:
        _display_names.pop(code_filename, None)
    else:
        _display_names[code_filename] = shown


def display_name(code_filename: str) -> str:
    """How a module file is shown in logs (its path within the program)."""
    return _display_names.get(code_filename, code_filename)


def stderr_sink(level: str, message: str, filename: str | None, line: int | None) -> None:
    where = f" {filename}:{line}" if filename else ""
    sys.stderr.write(f"[{level.upper()}]{where}: {message}\n")


def set_sink(sink: LogSink | None) -> LogSink | None:
    """Send this thread's module log lines to ``sink`` (None: back to stderr); returns the previous sink."""
    previous: LogSink | None = getattr(_local, "sink", None)
    _local.sink = sink
    return previous


def get_sink() -> LogSink:
    sink: LogSink | None = getattr(_local, "sink", None)
    return sink if sink is not None else stderr_sink


def emit(level: str, message: str, depth: int = 1) -> None:
    """Log ``message`` at ``level`` with the location of the caller ``depth`` frames up."""
    try:
        frame = sys._getframe(depth + 1)
        code_filename = frame.f_code.co_filename
        filename: str | None = _display_names.get(code_filename, code_filename)
        line: int | None = frame.f_lineno
    except ValueError:
        filename, line = None, None
    get_sink()(level, message, filename, line)


def _message(args: tuple[Any, ...], sep: str = " ") -> str:
    return sep.join(a if isinstance(a, str) else str(a) for a in args)


def error(*args: Any) -> None:
    emit(ERROR, _message(args))


def warn(*args: Any) -> None:
    emit(WARN, _message(args))


warning = warn


def info(*args: Any) -> None:
    emit(INFO, _message(args))


def debug(*args: Any) -> None:
    emit(DEBUG, _message(args))


def trace(*args: Any) -> None:
    emit(TRACE, _message(args))


def module_print(
    *args: Any, sep: str | None = " ", end: str | None = "\n", file: Any = None, flush: bool = False
) -> None:
    """``print`` as seen by module code: to the module log at info level, unless a ``file`` is given."""
    if file is not None:
        builtins.print(*args, sep=sep, end=end, file=file, flush=flush)
        return
    message = _message(args, " " if sep is None else sep)
    if end not in (None, "\n"):
        message += end
    emit(INFO, message)


def _level_of(levelno: int) -> str:
    if levelno >= logging.ERROR:
        return "Error"
    if levelno >= logging.WARNING:
        return "Warn"
    if levelno >= logging.INFO:
        return "Info"
    return "Debug" if levelno >= logging.DEBUG else "Trace"


class ModuleLogHandler(logging.Handler):
    """Python ``logging`` records into the module log, at the matching level and with their place."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
        except Exception:  # a broken format string is still worth a line
            message = str(record.msg)
        get_sink()(_level_of(record.levelno), message, display_name(record.pathname), record.lineno)


def route_python_logging() -> None:
    """Make Python's ``logging`` in module code write to the module log (every level, as ``log.debug`` does),
    while the project's own loggers keep writing warnings to stderr (where the supervisor reads a worker's)."""
    own = logging.getLogger("spacetimedb")
    own.setLevel(logging.WARNING)
    own.propagate = False
    own.addHandler(logging.StreamHandler(sys.stderr))
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    root.addHandler(ModuleLogHandler())
