"""Errors every server command shares: unreachable or unknown server, rejected token, bad database name."""

from __future__ import annotations

import os
import pty
import subprocess
import time
from pathlib import Path

import pytest

from spacetimedb.cli.config import SavedToken, edit_config
from tests.conftest import ServerProcess, start_server

from .conftest import SPACETIME, User, assert_one_line_error, environment, hint_of

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

# One invocation of every command that talks to a database (NAME is substituted).
DATABASE_COMMANDS = [
    ("call", "{db}", "add_note", '"x"', "1"),
    ("sql", "{db}", "SELECT * FROM note"),
    ("logs", "{db}"),
    ("describe", "{db}"),
    ("subscribe", "{db}", "SELECT * FROM note", "-t", "30"),
    ("delete", "{db}", "-y"),
    ("publish", "{db}", "-p", str(Path(__file__).parent / "modules" / "notes.py"), "-y"),
]


def fill(command: tuple[str, ...], db: str) -> list[str]:
    return [part.replace("{db}", db) for part in command]


@pytest.mark.parametrize("command", [*DATABASE_COMMANDS, ("list",)], ids=lambda c: c[0])
def test_an_unreachable_server_is_one_line_with_a_hint(
    tmp_path: Path, refused_url: str, command: tuple[str, ...]
):
    result = User(tmp_path / "cfg", refused_url)(*fill(command, "some-db"))
    error = assert_one_line_error(result, "cannot reach the server at")
    assert refused_url in error
    assert "spacetime start" in hint_of(result)


def test_an_unknown_server_nickname(alice: User):
    result = alice("call", "some-db", "add_note", '"x"', "1", "-s", "nowhere", server=False)
    assert_one_line_error(result, "no saved server named 'nowhere'")


@pytest.mark.parametrize("command", DATABASE_COMMANDS, ids=lambda c: c[0])
def test_an_invalid_database_name_is_a_usage_error(alice: User, command: tuple[str, ...]):
    result = alice(*fill(command, "Bad_Name"))
    assert_one_line_error(result, "'Bad_Name' is not a database name", code=2)


@pytest.fixture
def other_server() -> ServerProcess:
    proc = start_server(None)
    yield proc
    proc.shut_down()


def test_a_token_from_another_server_gets_the_logout_hint(
    alice: User, notes_db: str, other_server: ServerProcess, tmp_path: Path
):
    # A token another server signed, saved (by mistake) for this server's host:port.
    stranger = User(tmp_path / "stranger", other_server.url)
    assert stranger("login", "--server-issued-login", other_server.url, server=False).code == 0
    with edit_config(stranger.config_dir / "cli.toml") as config:
        saved = config.saved_token(other_server.url.removeprefix("http://"))
        assert saved is not None
        config.save_token(alice.url.removeprefix("http://"), SavedToken(saved.token, saved.identity))
    confused = User(stranger.config_dir, alice.url)
    for command in (DATABASE_COMMANDS[0], DATABASE_COMMANDS[4]):  # an HTTP route and the WebSocket
        result = confused(*fill(command, notes_db))
        assert_one_line_error(result, "rejected the saved token (401)")
        assert f"spacetime logout -s {alice.url}" in hint_of(result)

    # A token that is not even a JWT is refused with 400: the same advice.
    with edit_config(stranger.config_dir / "cli.toml") as config:
        config.save_token(alice.url.removeprefix("http://"), SavedToken("not-a-token", saved.identity))
    for command in DATABASE_COMMANDS[:2]:
        result = confused(*fill(command, notes_db))
        assert_one_line_error(result, "rejected the saved token (400)")
        assert f"spacetime logout -s {alice.url}" in hint_of(result)


def test_sql_prompt_keeps_its_history_in_the_config_dir(alice: User, notes_db: str):
    """On a terminal the prompt uses readline and saves what was typed in ``<config dir>/sql_history``."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [*SPACETIME, "sql", notes_db, "--interactive", "-s", alice.url],
        env=environment(alice.config_dir, TERM="dumb"),
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        close_fds=True,
    )
    os.close(terminal)
    try:
        output = read_until(controller, f"{notes_db}> ")
        assert "Type \\h for help" in output
        os.write(controller, b"SELECT text FROM note WHERE score = 42\r")
        read_until(controller, f"{notes_db}> ")
        os.write(controller, b"\\q\r")
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        os.close(controller)
    history = (alice.config_dir / "sql_history").read_text()
    assert "SELECT text FROM note WHERE score = 42" in history


def read_until(fd: int, marker: str, timeout: float = 30) -> str:
    """Read a pty until ``marker`` appears (bounded)."""
    import select

    seen = ""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no {marker!r} in {seen!r}"
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            try:
                seen += os.read(fd, 4096).decode(errors="replace")
            except OSError:  # the process closed the terminal
                break
    return seen


def test_a_reducer_where_the_database_belongs_says_the_database_comes_first(alice: User):
    result = alice("call", "set_name", "Alice")
    error = assert_one_line_error(result, "'set_name' is not a database name", code=2)
    assert "the database comes first: spacetime call NAME set_name [ARG]..." in error
