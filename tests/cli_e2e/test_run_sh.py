"""`./run.sh`, the README's first command, on its own port (SPACETIME_RUN_PORT) with a private home."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, ServerProcess

from .conftest import Result, User, free_port

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        not (ROOT / ".venv" / "bin" / "spacetime").exists(),
        reason="run.sh would create .venv and pip install (./test.sh sets .venv up first)",
    ),
    pytest.mark.slow,
]


def run_sh(home: Path, port: int, **env: str) -> Result:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("SPACETIME_", "XDG_"))
    }
    environment.update(
        HOME=str(home), SPACETIME_CONFIG_DIR=str(home / "config"), SPACETIME_RUN_PORT=str(port), NO_COLOR="1"
    )
    environment.update(env)
    completed = subprocess.run(
        [str(ROOT / "run.sh")],
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
        stdin=subprocess.DEVNULL,
    )
    return Result(completed.returncode, completed.stdout, completed.stderr)


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A home directory for run.sh; any server it left running is stopped afterwards."""
    home = tmp_path / "home"
    home.mkdir()
    yield home
    for pid_file in (home / ".local" / "state" / "spacetime").glob("server-*.pid"):
        try:
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def test_run_sh_publishes_calls_and_queries_then_reuses_its_server(home: Path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    first = run_sh(home, port, SPACETIME_RUN_MESSAGE='Hello, "quoted" world')
    assert first.code == 0, first
    assert f"Starting a server at {url}" in first.out
    assert "Created new database with name: quickstart-chat" in first.out
    rows = [line for line in first.out.splitlines() if line.startswith(" 1  |")]
    assert len(rows) == 1 and rows[0].endswith('| "Hello, "quoted" world"'), first.out
    state = home / ".local" / "state" / "spacetime"
    pid = int((state / f"server-{port}.pid").read_text())
    assert f"Stop it with: kill {pid}" in first.out
    assert str(state / f"server-{port}.log") in first.out
    assert (home / ".local" / "share" / "spacetime" / "data" / "server.lock").exists()  # the default data dir

    second = run_sh(home, port)
    assert second.code == 0, second
    assert f"Reusing the server already running at {url}" in second.out
    assert "Updated database with name: quickstart-chat" in second.out
    assert " 2  |" in second.out and "Hello from run.sh!" in second.out

    os.kill(pid, signal.SIGTERM)  # what run.sh tells the user to do
    user = User(home / "config", url)
    deadline = time.monotonic() + 60
    while user("server", "ping", url, server=False).code == 0:
        assert time.monotonic() < deadline, "the server did not stop on SIGTERM"
        time.sleep(0.2)


def test_run_sh_reports_a_server_that_cannot_start(home: Path, shared_server: ServerProcess):
    # The shared server holds its data directory: a second server there exits at once, and run.sh says why.
    assert shared_server.data_dir is not None
    result = run_sh(home, free_port(), SPACETIME_RUN_DATA_DIR=str(shared_server.data_dir))
    assert result.code == 1
    assert "the server exited before it was ready" in result.err
    assert "in use by another running server" in result.err  # the log's last lines
