"""End-to-end fixtures: a real server process, and real `spacetime` processes, each user with its own config.

One server per test module (databases get unique names, so tests never see each other's), and one config
directory per user per test: `alice` and `bob` are two identities on that server.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, ServerProcess, start_server

SPACETIME = [sys.executable, "-m", "spacetimedb.cli.main"]
MODULES = Path(__file__).resolve().parent / "modules"
NOTES = MODULES / "notes.py"
SHAPES = MODULES / "shapes.py"
QUICKSTART = ROOT / "examples" / "chat" / "quickstart_chat.py"


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()


def assert_one_line_error(result: Result, contains: str = "", *, code: int | None = None) -> str:
    """Non-zero exit, exactly one `error:` line (plus at most one `hint:` line after it), no traceback.

    Returns the error line, without its `error: ` prefix."""
    assert result.code != 0, result
    if code is not None:
        assert result.code == code, result
    assert "Traceback" not in result.err, result.err
    lines = [line for line in result.err_lines if not line.startswith("saved a new identity")]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, result.err
    after = lines[lines.index(errors[0]) + 1 :]
    assert len(after) <= 1 and all(line.startswith("hint: ") for line in after), result.err
    assert contains in errors[0], (contains, result.err)
    return errors[0].removeprefix("error: ")


def hint_of(result: Result) -> str:
    hints = [line.removeprefix("hint: ") for line in result.err_lines if line.startswith("hint: ")]
    assert len(hints) == 1, result.err
    return hints[0]


def v10_section(raw: dict[str, Any], name: str) -> Any:
    """One section's payload in RawModuleDef V10 JSON (what `describe --json` prints), or None."""
    return next((section[name] for section in raw["sections"] if name in section), None)


def environment(config_dir: Path, **extra: str) -> dict[str, str]:
    """A `spacetime` process's environment: its own config dir and home, no inherited SPACETIME_* settings."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SPACETIME_", "XDG_"))}
    env["SPACETIME_CONFIG_DIR"] = str(config_dir)
    env["HOME"] = str(config_dir.parent / f"{config_dir.name}-home")
    env["NO_COLOR"] = "1"
    env.update(extra)
    return env


@dataclass(frozen=True)
class User:
    """`spacetime` as one user: one config dir (hence one identity per server), talking to one server."""

    config_dir: Path
    url: str

    def argv(self, args: tuple[str, ...], server: bool) -> list[str]:
        return [*SPACETIME, *args, *(["-s", self.url] if server else [])]

    def __call__(
        self,
        *args: str,
        server: bool = True,
        input: str = "",
        cwd: Path | None = None,
        timeout: float = 90,
        **env: str,
    ) -> Result:
        """Run `spacetime ARGS... [-s URL]` to completion (stdin is a pipe, never a terminal)."""
        completed = subprocess.run(
            self.argv(args, server),
            env=environment(self.config_dir, **env),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
        )
        return Result(completed.returncode, completed.stdout, completed.stderr)

    def start(self, *args: str, server: bool = True, **env: str) -> subprocess.Popen[str]:
        """Start `spacetime ARGS... [-s URL]` in the background, stdout and stderr piped."""
        return subprocess.Popen(
            self.argv(args, server),
            env=environment(self.config_dir, **env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def publish(self, database: str, module: Path = NOTES, *args: str) -> Result:
        result = self("publish", database, "-p", str(module), *args)
        assert result.code == 0, result
        return result


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real server for the tests of a module (each test uses its own databases and identities)."""
    proc = start_server(tmp_path_factory.mktemp("server") / "data")
    try:
        yield proc
    finally:
        proc.shut_down()


@pytest.fixture
def alice(tmp_path: Path, shared_server: ServerProcess) -> User:
    return User(tmp_path / "alice", shared_server.url)


@pytest.fixture
def bob(tmp_path: Path, shared_server: ServerProcess) -> User:
    return User(tmp_path / "bob", shared_server.url)


@pytest.fixture
def db_name() -> str:
    """A database name no other test uses."""
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def notes_db(alice: User, db_name: str) -> str:
    """A database published by alice from modules/notes.py."""
    alice.publish(db_name)
    return db_name


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A URL where nothing listens: the port is bound but never listening, so nobody else can take it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
