"""The server's config file and its own log: what ``--config FILE`` (or ``config.toml`` in the data directory)
sets, how it meets the command line, and how the server logs (level, text or JSON).

The file is flat TOML. Its keys are the command-line flags without their leading dashes, spelled with dashes as
the flags are (``reducer-budget = 2.5`` is ``--reducer-budget 2.5``): every tunable of ``tunables.TUNABLES``, taken
from that table (so a tunable added there is a key here), and ``listen-addr``, ``data-dir`` and ``in-memory``.
Values are TOML values: numbers or strings (``"2GiB"``) as the flag takes them, ``true``/``false`` for a switch,
and a list of strings for a flag that takes several (a repeatable flag, or a comma-separated one). A flag given on
the command line beats the file; a key nobody knows is an error that names it.

``python -m spacetimedb.server.config`` prints a commented example with every key (``config.example.toml``).
"""

from __future__ import annotations

import difflib
import json
import logging
import sys
import textwrap
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .tunables import FLAG, TEXT, TUNABLES, Tunable

CONFIG_FILE_NAME = "config.toml"
# keys of the command lines beyond the tunables: key -> (name in the resolved values, TOML type wanted)
START_KEYS: dict[str, tuple[str, type]] = {
    "listen-addr": ("listen_addr", str),
    "data-dir": ("data_dir", str),
    "in-memory": ("in_memory", bool),
}
DEFAULT_LISTEN_ADDR = "127.0.0.1:3000"


class ConfigError(ValueError):
    """The config file cannot be used; ``str()`` names the file and what is wrong."""


def config_key(tunable: Tunable) -> str:
    return tunable.flag.removeprefix("--")


def _tunables_by_key() -> dict[str, Tunable]:
    return {config_key(t): t for t in TUNABLES}


def read_config(path: Path) -> dict[str, Any]:
    """The values the file at ``path`` sets, by name (``reducer_budget``, ``listen_addr``, ...)."""
    try:
        with open(path, "rb") as file:
            document = tomllib.load(file)
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the config file {path} is not valid TOML: {exc}") from None
    tunables = _tunables_by_key()
    unknown = sorted(key for key in document if key not in tunables and key not in START_KEYS)
    if unknown:
        raise ConfigError(
            f"the config file {path} has unknown keys: {', '.join(_with_hints(unknown, tunables))}"
        )
    values: dict[str, Any] = {}
    for key, value in document.items():
        try:
            if key in START_KEYS:
                name, wanted = START_KEYS[key]
                values[name] = _typed(value, wanted)
            else:
                tunable = tunables[key]
                values[tunable.name] = _tunable_value(tunable, value)
        except ValueError as exc:
            raise ConfigError(f"the config file {path}: `{key}` {exc}") from None
    return values


def _with_hints(unknown: list[str], tunables: Mapping[str, Tunable]) -> list[str]:
    known = [*tunables, *START_KEYS]
    shown = []
    for key in unknown:
        close = difflib.get_close_matches(key.replace("_", "-"), known, n=1)
        shown.append(f"`{key}` (did you mean `{close[0]}`?)" if close else f"`{key}`")
    return shown


def _typed(value: Any, wanted: type) -> Any:
    if not isinstance(value, wanted) or (wanted is not bool and isinstance(value, bool)):
        raise ValueError(f"must be a TOML {'boolean' if wanted is bool else 'string'}, got {value!r}")
    return value


def _tunable_value(tunable: Tunable, value: Any) -> Any:
    """The file's value as the command line would give it, checked by the tunable itself."""
    if tunable.kind == FLAG:
        return _typed(value, bool)
    if isinstance(value, list):
        if not all(isinstance(item, str) for item in value):
            raise ValueError(f"must be a list of strings, got {value!r}")
        if tunable.repeatable:
            tunable.parse(value)  # refuse a bad item now, naming the key
            return list(value)
        if tunable.kind == TEXT:  # a comma-separated flag: a list is its items
            return ",".join(value)
        raise ValueError(f"takes one value, got a list {value!r}")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"must be a number or a string, got {value!r}")
    if tunable.repeatable:
        tunable.parse(str(value))
        return [str(value)]
    tunable.parse(value)  # refuse a bad value now, naming the key
    return value


@dataclass(frozen=True)
class StartSettings:
    """What a server starts with, command line and config file merged."""

    listen_addr: str
    data_dir: Path | None
    in_memory: bool
    tunables: dict[str, Any]  # by tunable name, only those set somewhere
    config_file: Path | None


def resolve(
    flags: Mapping[str, Any],
    config_file: Path | None,
    default_data_dir: Path | None = None,
    default_listen_addr: str = DEFAULT_LISTEN_ADDR,
) -> StartSettings:
    """Merge the command line's ``flags`` (by name; None or False when not given) over the config file: ``--config
    FILE``, else ``config.toml`` in the data directory (the flag's, else ``default_data_dir``) when there is one.
    ``default_listen_addr`` applies when neither gives one."""
    data_dir = flags.get("data_dir") or default_data_dir
    if config_file is None and data_dir is not None and (Path(data_dir) / CONFIG_FILE_NAME).is_file():
        config_file = Path(data_dir) / CONFIG_FILE_NAME
    from_file = read_config(config_file) if config_file is not None else {}
    given = {name: value for name, value in flags.items() if value is not None and value is not False}
    merged = {**from_file, **given}
    tunables = {t.name: merged[t.name] for t in TUNABLES if t.name in merged}
    directory = merged.get("data_dir")
    return StartSettings(
        listen_addr=merged.get("listen_addr") or default_listen_addr,
        data_dir=Path(directory).expanduser() if directory else None,
        in_memory=bool(merged.get("in_memory")),
        tunables=tunables,
        config_file=config_file,
    )


def parse_listen_addr(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:3000`` for IPv6) as (host, port); ``ValueError`` names ``--listen-addr``."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"--listen-addr: expected HOST:PORT (e.g. {DEFAULT_LISTEN_ADDR}), got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


# ---- the server's own log ---------------------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (RFC 3339, UTC), level, logger, message, and the exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


JsonFormatter.converter = time.gmtime


def configure_logging(level: str, fmt: str) -> None:
    """The server's log on stderr at ``level``, as text lines or JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())


def example_config() -> str:
    """A commented config file with every key at its default."""
    lines = [
        "# spacetimedb-py server configuration: `spacetime start --config FILE`, or config.toml in the data",
        "# directory. Keys are the command-line flags without their dashes; a flag given on the command line",
        "# wins over this file, and an unknown key is an error. Uncomment what you change.",
        "",
        "# Where to accept HTTP and WebSocket connections (port 0 picks a free one).",
        f'# listen-addr = "{DEFAULT_LISTEN_ADDR}"',
        "# Where databases live (default: ~/.local/share/spacetime/data); or keep everything in memory.",
        '# data-dir = "/var/lib/spacetime"',
        "# in-memory = false",
    ]
    for tunable in TUNABLES:
        lines += [
            "",
            *(f"# {line}" for line in _wrap(tunable.help)),
            f"# {config_key(tunable)} = {_shown(tunable)}",
        ]
    return "\n".join(lines) + "\n"


def _shown(tunable: Tunable) -> str:
    if tunable.kind == FLAG:
        return "false"
    if tunable.repeatable:
        return "[]"
    shown = tunable.shown_default
    if shown is None:  # not set by default: the help says what happens then
        return f"<{tunable.shown_metavar}>"
    if tunable.kind == TEXT or not shown.replace(".", "", 1).isdigit():
        return json.dumps(shown)
    return shown


def _wrap(text: str, width: int = 110) -> list[str]:
    return textwrap.wrap(text, width - 2)


if __name__ == "__main__":
    sys.stdout.write(example_config())
