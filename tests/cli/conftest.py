"""Fixtures for the CLI tests: an isolated config directory, and ways to run `spacetime` in and out of process."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

SPACETIME_COMMAND = [sys.executable, "-m", "spacetimedb.cli.main"]


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()


def assert_one_line_error(result: Result, *, contains: str = "") -> None:
    """Non-zero exit, an `error:` line, at most a `hint:` line after it, and no traceback."""
    assert result.code != 0, result
    lines = result.err_lines
    assert lines, result
    assert "Traceback" not in result.err, result.err
    error_lines = [line for line in lines if line.startswith("error: ")]
    assert len(error_lines) == 1, result.err
    after_error = lines[lines.index(error_lines[0]) + 1 :]
    assert len(after_error) <= 1 and all(line.startswith("hint: ") for line in after_error), result.err
    assert contains in error_lines[0], (contains, result.err)


def cli_environment(config_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a `spacetime` subprocess: our config dir, no inherited SPACETIME_* settings."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SPACETIME_")}
    env["SPACETIME_CONFIG_DIR"] = str(config_dir)
    env["HOME"] = str(config_dir.parent / "home")
    env.update(extra)
    return env


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    return tmp_path / "config"


@pytest.fixture
def config_path(config_dir: Path) -> Path:
    return config_dir / "cli.toml"


@pytest.fixture
def spacetime(config_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """Run `spacetime ARGS...` in this process (fast); returns a Result."""
    for key in list(os.environ):
        if key.startswith("SPACETIME_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("SPACETIME_CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("HOME", str(config_dir.parent / "home"))

    from spacetimedb.cli.main import run

    def invoke(*args: str) -> Result:
        capsys.readouterr()
        code = run(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


@pytest.fixture
def spacetime_process(config_dir: Path):
    """Run `spacetime ARGS...` as a real process; returns a Result."""

    def invoke(*args: str, timeout: float = 60, **env: str) -> Result:
        completed = subprocess.run(
            [*SPACETIME_COMMAND, *args],
            env=cli_environment(config_dir, **env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Result(completed.returncode, completed.stdout, completed.stderr)

    return invoke
