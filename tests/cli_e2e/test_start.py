"""`spacetime start`: serves in the foreground, says where, keeps data, stops cleanly, refuses a busy data dir."""

from __future__ import annotations

import queue
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import SPACETIME, Result, User, assert_one_line_error, environment

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]


class StartedServer:
    """A `spacetime start` process, with the lines it printed before it was ready."""

    def __init__(self, config_dir: Path, *args: str, **env: str) -> None:
        self.process = subprocess.Popen(
            [*SPACETIME, "start", *args],
            env=environment(config_dir, **env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            self.lines = self._read_until_listening()
        except BaseException:
            self.kill()  # never leave a server behind when a test fails early
            raise
        self.url = next(line.split()[-1] for line in self.lines if line.startswith("listening on "))

    def _read_until_listening(self, timeout: float = 60) -> list[str]:
        # A thread reads, so the wait is bounded even if the process prints nothing (select() cannot see
        # lines already buffered by the text wrapper).
        assert self.process.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        stdout = self.process.stdout
        threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while not any(line.startswith("press Ctrl-C") for line in seen):
            try:
                seen.append(lines.get(timeout=max(0.0, deadline - time.monotonic())).rstrip("\n"))
            except queue.Empty:
                raise AssertionError(f"`spacetime start` printed only {seen}") from None
        return seen

    def stop(self, sig: int = signal.SIGTERM) -> Result:
        self.process.send_signal(sig)
        assert self.process.stderr is not None
        self.process.wait(timeout=60)
        return Result(self.process.returncode, "", self.process.stderr.read())

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


@pytest.fixture
def servers() -> Iterator[list[StartedServer]]:
    started: list[StartedServer] = []
    yield started
    for server in started:
        server.kill()


def test_start_serves_until_sigterm_and_keeps_the_data(tmp_path: Path, servers: list[StartedServer]):
    data_dir = tmp_path / "data"
    first = StartedServer(tmp_path / "cfg", "--data-dir", str(data_dir), "--listen-addr", "127.0.0.1:0")
    servers.append(first)
    assert first.lines[0].startswith("listening on http://127.0.0.1:")
    assert f"data in {data_dir}" in first.lines
    user = User(tmp_path / "cfg", first.url)
    assert user("server", "ping", first.url, server=False).code == 0
    user.publish("kept")
    assert user("call", "kept", "add_note", '"survives"', "7").code == 0

    stopped = first.stop(signal.SIGTERM)
    assert stopped.code == 0, stopped
    assert "server stopped" in stopped.err and "Traceback" not in stopped.err

    second = StartedServer(tmp_path / "cfg", "--data-dir", str(data_dir), "--listen-addr", "127.0.0.1:0")
    servers.append(second)
    rows = User(tmp_path / "cfg", second.url)("sql", "kept", "SELECT text, score FROM note")
    assert rows.code == 0, rows
    assert rows.out.splitlines()[2].split() == ['"survives"', "|", "7"]
    assert second.stop(signal.SIGINT).code == 0  # Ctrl-C stops it as cleanly


def test_a_data_dir_in_use_is_refused_naming_the_pid(tmp_path: Path, servers: list[StartedServer]):
    data_dir = tmp_path / "data"
    first = StartedServer(tmp_path / "cfg", "--data-dir", str(data_dir), "--listen-addr", "127.0.0.1:0")
    servers.append(first)
    user = User(tmp_path / "cfg", first.url)
    refused = user("start", "--data-dir", str(data_dir), "--listen-addr", "127.0.0.1:0", server=False)
    error = assert_one_line_error(refused, "in use by another running server")
    assert f"pid {first.process.pid}" in error and str(data_dir) in error


def test_default_data_dir_is_under_the_user_data_home(tmp_path: Path, servers: list[StartedServer]):
    xdg = StartedServer(tmp_path / "cfg", "--listen-addr", "127.0.0.1:0", XDG_DATA_HOME=str(tmp_path / "xdg"))
    servers.append(xdg)
    assert f"data in {tmp_path / 'xdg' / 'spacetime' / 'data'}" in xdg.lines
    assert xdg.stop().code == 0
    home = StartedServer(tmp_path / "cfg", "--listen-addr", "127.0.0.1:0")  # no XDG_DATA_HOME: ~/.local/share
    servers.append(home)
    expected = Path(environment(tmp_path / "cfg")["HOME"]) / ".local" / "share" / "spacetime" / "data"
    assert f"data in {expected}" in home.lines


def test_in_memory(tmp_path: Path, servers: list[StartedServer]):
    server = StartedServer(tmp_path / "cfg", "--in-memory", "--listen-addr", "127.0.0.1:0")
    servers.append(server)
    assert any(line.startswith("data in memory") for line in server.lines)
    user = User(tmp_path / "cfg", server.url)
    user.publish("ephemeral")
    assert server.stop().code == 0


def test_start_argument_errors(tmp_path: Path):
    user = User(tmp_path / "cfg", "http://127.0.0.1:1")
    both = user("start", "--in-memory", "--data-dir", str(tmp_path / "d"), server=False)
    assert_one_line_error(both, "--in-memory and --data-dir exclude each other", code=2)
    bad_addr = user("start", "--listen-addr", "localhost", server=False)
    assert_one_line_error(bad_addr, "expected HOST:PORT", code=2)


def test_a_port_in_use_is_one_line(tmp_path: Path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        user = User(tmp_path / "cfg", "http://127.0.0.1:1")
        result = user("start", "--in-memory", "--listen-addr", f"127.0.0.1:{port}", server=False)
    assert_one_line_error(result, f"cannot listen on 127.0.0.1:{port}: the address is already in use")


def test_start_with_pg_port_serves_postgresql_clients_with_the_cli_token(
    tmp_path: Path, servers: list[StartedServer]
):
    import psycopg

    server = StartedServer(tmp_path / "cfg", "--in-memory", "--listen-addr", "127.0.0.1:0", "--pg-port", "0")
    servers.append(server)
    announced = next(line for line in server.lines if line.startswith("PostgreSQL clients connect to "))
    port = int(announced.split()[4].rsplit(":", 1)[1])
    user = User(tmp_path / "cfg", server.url)
    user.publish("kept")
    assert user("call", "kept", "add_note", '"over pg"', "3").code == 0
    shown = user("login", "show", "--token")
    prefix = "Your auth token (don't share this!) is "  # upstream's line, which the README's sed takes
    token = next(line for line in shown.out.splitlines() if line.startswith(prefix)).removeprefix(prefix)
    with psycopg.connect(
        host="127.0.0.1", port=port, dbname="kept", user="any", password=token, autocommit=True
    ) as conn:
        assert conn.execute("SELECT text, score FROM note").fetchall() == [("over pg", 3)]
