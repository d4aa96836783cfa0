"""`spacetime dev`: publishes, regenerates the bindings and the ctx.db stub, republishes on every change of the
module file (printing each migration plan, and a refused one clearly), starts a local server when none answers
and stops it again, and exits 130 on Ctrl-C."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ServerProcess

from .conftest import SPACETIME, User, assert_one_line_error, environment, free_port

pytestmark = pytest.mark.timeout(240)

MODULE = """\
from typing import Annotated

import spacetimedb
from spacetimedb import PrimaryKey, ReducerContext


@spacetimedb.table(public=True)
class Note:
    id: Annotated[int, PrimaryKey]
    text: str


@spacetimedb.reducer
def add(ctx: ReducerContext, id: int, text: str) -> None:
    ctx.db.note.insert(Note(id=id, text=text))
"""

WITH_STARS = MODULE.replace("    text: str\n", "    text: str\n    stars: int = 0\n")
WITHOUT_TEXT = WITH_STARS.replace("    text: str\n", "").replace(
    "ctx.db.note.insert(Note(id=id, text=text))", "ctx.db.note.insert(Note(id=id))"
)


class DevProcess:
    """A `spacetime dev` process whose stdout and stderr are read by threads into one queue of lines."""

    def __init__(self, user: User, cwd: Path, *args: str) -> None:
        self.process = subprocess.Popen(
            [*SPACETIME, "dev", *args],
            env=environment(user.config_dir),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.out: list[str] = []
        self.err: list[str] = []
        self.readers = [
            threading.Thread(target=self._read, args=(stream, kept), daemon=True)
            for stream, kept in ((self.process.stdout, self.out), (self.process.stderr, self.err))
        ]
        for reader in self.readers:
            reader.start()
        self.seen: list[str] = []

    def _read(self, stream: object, kept: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            kept.append(line.rstrip("\n"))
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 90) -> list[str]:
        """The lines printed up to and including the next one containing ``text``."""
        deadline = time.monotonic() + timeout
        taken: list[str] = []
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"`spacetime dev` never printed {text!r}; it printed {taken}") from None
            taken.append(line)
            if text in line:
                self.seen += taken
                return taken

    def wait_for_error(self, text: str, timeout: float = 30) -> str:
        """The next stderr line containing ``text`` (stderr is read by its own thread, so it may lag stdout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [line for line in self.err if text in line]
            if found:
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"`spacetime dev` never printed {text!r} on stderr; it printed {self.err}")

    def interrupt(self) -> int:
        """Ctrl-C; returns the exit status once the process and its output have ended."""
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=60)
        for reader in self.readers:
            reader.join(timeout=30)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/v1/ping", timeout=5):
            return True
    except (urllib.error.URLError, OSError):
        return False


def _edit(path: Path, text: str) -> None:
    # A write that is visibly newer even on a file system with coarse timestamps
    before = path.stat().st_mtime_ns
    path.write_text(text, encoding="utf-8")
    while path.stat().st_mtime_ns == before:
        time.sleep(0.01)
        path.write_text(text, encoding="utf-8")


def test_dev_starts_a_server_republishes_on_change_and_stops_on_ctrl_c(tmp_path: Path):
    project = tmp_path / "notes-app"
    project.mkdir()
    module = project / "module.py"
    module.write_text(MODULE, encoding="utf-8")
    url = f"http://127.0.0.1:{free_port()}"
    user = User(tmp_path / "cfg", url)
    dev = DevProcess(user, project, "-s", url)  # no NAME: the one `spacetime init` gives the directory
    try:
        first = dev.wait_for("Watching for changes")
        assert any(line.startswith(f"No server answers at {url}: starting one") for line in first), first
        assert f"Database: notes-app on {url}" in first
        assert any("Created new database with name: notes-app" in line for line in first), first
        assert (project / "module_bindings" / "tables.py").is_file()
        row_types = project / "module_bindings" / "types.py"
        assert "stars" not in row_types.read_text(encoding="utf-8")
        assert "def note(self) -> NoteHandle: ..." in (project / "module_db.pyi").read_text(encoding="utf-8")

        _edit(module, WITH_STARS)
        update = dev.wait_for("Watching for changes")
        assert "File change detected, publishing again..." in update
        assert any("Added column(s) stars to table note" in line for line in update), update
        assert any("Updated database with name: notes-app" in line for line in update), update
        assert "stars" in row_types.read_text(encoding="utf-8")

        user("call", "notes-app", "add", "1", '"kept"')
        _edit(module, WITHOUT_TEXT)  # removing a column needs a manual migration: refused, and dev goes on
        refused = dev.wait_for("Waiting for the next change")
        assert "This update cannot be applied automatically:" in refused
        assert dev.wait_for_error("needs a manual migration").startswith("error: publishing to 'notes-app'")
        assert "stars" in row_types.read_text(
            encoding="utf-8"
        )  # bindings of the refused module are not written
        assert "kept" in user("sql", "notes-app", "SELECT * FROM note").out

        _edit(module, WITH_STARS)  # back to a publishable module: dev picks it up again
        again = dev.wait_for("Watching for changes")
        assert any("No changes." in line for line in again), again

        assert dev.interrupt() == 130
        assert "Stopped the server dev started" in dev.err
        assert not any(line.startswith("Traceback") for line in dev.err), dev.err
        assert not _answers(url)
    finally:
        dev.kill()


def test_dev_uses_a_running_server_and_leaves_it_running(
    tmp_path: Path, alice: User, shared_server: ServerProcess, db_name: str
):
    module = tmp_path / "game.py"
    module.write_text(MODULE, encoding="utf-8")
    bindings = tmp_path / "client" / "bindings"
    dev = DevProcess(alice, tmp_path, db_name, "-p", str(module), "-o", str(bindings), "-s", alice.url)
    try:
        first = dev.wait_for("Watching for changes")
        assert not any(line.startswith("No server answers") for line in first), first
        assert (bindings / "tables.py").is_file()
        assert (tmp_path / "game_db.pyi").is_file()
        _edit(module, "this is not python\n")
        broken = dev.wait_for("Waiting for the next change")
        assert "File change detected, publishing again..." in broken
        assert dev.wait_for_error("error: cannot publish").startswith("error: cannot publish")
        assert dev.interrupt() == 130
    finally:
        dev.kill()
    assert _answers(shared_server.url)
    assert alice("call", db_name, "add", "1", '"still there"').code == 0


def test_dev_refuses_a_remote_server_that_does_not_answer(tmp_path: Path, alice: User, refused_url: str):
    module = tmp_path / "module.py"
    module.write_text(MODULE, encoding="utf-8")
    remote = refused_url.replace("127.0.0.1", "localhost.invalid")
    result = alice("dev", "x", "-p", str(module), "-s", remote, server=False)
    assert_one_line_error(result, "does not answer")


def test_dev_delete_data_replaces_a_database_whose_update_needs_a_manual_migration(
    tmp_path: Path, alice: User, db_name: str
):
    module = tmp_path / "module.py"
    module.write_text(WITH_STARS, encoding="utf-8")
    dev = DevProcess(alice, tmp_path, db_name, "-c", "--skip-generate", "-s", alice.url)
    try:
        dev.wait_for("Watching for changes")
        assert alice("call", db_name, "add", "1", '"old"').code == 0
        _edit(module, WITHOUT_TEXT)
        update = dev.wait_for("Watching for changes")
        assert (
            f"This update needs a manual migration: deleting all the data of '{db_name}' on {alice.url}"
            in update
        )
        assert any(f"database with name: {db_name}" in line for line in update), "\n".join(update)
        assert dev.interrupt() == 130
    finally:
        dev.kill()
    assert "old" not in alice("sql", db_name, "SELECT * FROM note").out
    assert not (tmp_path / "module_bindings").exists()  # --skip-generate
    assert not (tmp_path / "module_db.pyi").exists()


def test_dev_takes_its_database_server_and_module_from_spacetime_json(
    tmp_path: Path, alice: User, db_name: str
):
    """Upstream's dev reads its targets from spacetime.json (crates/cli/src/subcommands/dev.rs); `dev.run` is
    upstream's client command, which this CLI prints and does not start."""
    (tmp_path / "server").mkdir()
    (tmp_path / "server" / "module.py").write_text(MODULE, encoding="utf-8")
    config = {
        "database": db_name,
        "server": alice.url,
        "module-path": "./server",
        "dev": {"run": "npm run dev"},
    }
    (tmp_path / "spacetime.json").write_text(json.dumps(config))
    dev = DevProcess(alice, tmp_path, "--skip-generate")
    try:
        started = dev.wait_for("Watching for changes")
        assert f"Using configuration from {tmp_path / 'spacetime.json'}" in started
        assert any("does not start the client (dev.run: npm run dev)" in line for line in started), started
        assert f"Database: {db_name} on {alice.url}" in started
        assert dev.interrupt() == 130
    finally:
        dev.kill()
    assert alice("call", db_name, "add", "1", '"from the config"').code == 0
