"""examples/chat/client.py: a person types into the terminal client while another client chats with them."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from spacetimedb.client import DbConnection

from .helpers import ROOT, publish

CLIENT = ROOT / "examples" / "chat" / "client.py"
pytestmark = [pytest.mark.timeout(90), pytest.mark.slow]


class Terminal:
    """The client as a subprocess: lines in, lines out."""

    def __init__(self, url: str | None, credentials: Path, config_dir: Path | None = None) -> None:
        env = dict(os.environ, SPACETIMEDB_CLIENT_CREDENTIALS_DIR=str(credentials), PYTHONUNBUFFERED="1")
        env.pop("SPACETIMEDB_URI", None)
        if config_dir is not None:
            env["SPACETIME_CONFIG_DIR"] = str(config_dir)
        server = [] if url is None else ["--server", url]
        self.process = subprocess.Popen(
            [sys.executable, str(CLIENT), *server, "--database", "quickstart-chat"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def type(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()

    def quit(self) -> None:
        self.type("/quit")
        assert self.process.wait(15) == 0

    def expect(self, text: str, timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                continue
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"the client never printed {text!r}; it printed: {self.seen}")


def test_terminal_chat_client(server, tmp_path: Path) -> None:
    publish(server.url, "quickstart-chat")
    credentials = tmp_path / "credentials"
    alice = Terminal(server.url, credentials)
    try:
        connected = alice.expect("* connected as ")
        alice.expect("* online:")
        alice.type("/name alice")
        alice.type("hello, anyone?")
        alice.expect("alice: hello, anyone?")

        # bob, a Python SDK client, talks back; alice's terminal shows it with bob's name
        heard: list[tuple[str, str]] = []
        ready = threading.Event()
        bob = DbConnection.builder().with_uri(server.url).with_database_name("quickstart-chat").build()
        bob.db.message.on_insert(
            lambda ctx, m: heard.append((ctx.db.user.identity.find(m.sender).name, m.text))
        )
        bob.subscription_builder().on_applied(lambda ctx: ready.set()).subscribe(
            ["SELECT * FROM user", "SELECT * FROM message"]
        )
        bob.run_threaded()
        assert ready.wait(10)
        assert heard == [("alice", "hello, anyone?")]
        bob.reducers.set_name("bob").result(10)
        bob.reducers.send_message("hi alice").result(10)
        alice.expect("bob: hi alice")

        alice.type("/name ")  # refused by the module: the client says why
        alice.expect("! changing your name failed: ValueError: Names must not be empty")
        alice.type("/quit")
        assert alice.process.wait(15) == 0
        bob.disconnect()
    finally:
        if alice.process.poll() is None:
            alice.process.kill()

    # the identity was saved: the next session is alice again, and sees the history
    with Terminal(server.url, credentials) as again:
        assert again.expect("* connected as ") == connected
        again.expect("alice: hello, anyone?")
        again.expect("bob: hi alice")
        again.quit()


def test_the_terminal_client_connects_to_the_clis_default_server(server, tmp_path: Path) -> None:
    publish(server.url, "quickstart-chat")
    config = tmp_path / "config"
    added = subprocess.run(
        [sys.executable, "-m", "spacetimedb", "server", "add", server.url, "--name", "mine", "--default"],
        env=dict(os.environ, SPACETIME_CONFIG_DIR=str(config)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert added.returncode == 0, added.stderr
    # no --server: the CLI's default
    with Terminal(None, tmp_path / "credentials", config_dir=config) as client:
        client.expect("* connected as ")
        client.quit()
