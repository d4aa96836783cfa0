"""``python -m spacetimedb`` is the ``spacetime`` command: same output, same errors, same exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from spacetimedb import __version__


def run(*args: str, config_dir: Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SPACETIME_")}
    env["SPACETIME_CONFIG_DIR"] = str(config_dir)
    return subprocess.run(
        [sys.executable, "-m", "spacetimedb", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def test_it_runs_the_cli(tmp_path: Path):
    version = run("version", config_dir=tmp_path)
    assert version.returncode == 0, version.stderr
    assert version.stdout.splitlines()[:2] == [
        f"spacetime CLI {__version__}",
        f"spacetimedb-py {__version__}",
    ]
    help_text = run("--help", config_dir=tmp_path)
    assert help_text.returncode == 0
    assert help_text.stdout.startswith("Usage: spacetime [OPTIONS] COMMAND [ARGS]...")
    assert "publish" in help_text.stdout


def test_its_errors_are_the_clis(tmp_path: Path):
    unknown = run("nope", config_dir=tmp_path)
    assert unknown.returncode == 2
    assert unknown.stderr.splitlines() == ["error: No such command 'nope'.", "hint: see `spacetime --help`"]


def test_a_command_does_its_work(tmp_path: Path):
    created = run("init", "--lang", "python", "project", config_dir=tmp_path / "config", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    assert (tmp_path / "project" / "module.py").is_file()
