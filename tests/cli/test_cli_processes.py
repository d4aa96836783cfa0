"""Real `spacetime` processes against one config: concurrency, kill -9, signals, crashes in the middle of a save."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from spacetimedb.cli.config import read_config
from spacetimedb.cli.lock import LockOwner

from .conftest import SPACETIME_COMMAND, Result, assert_one_line_error, cli_environment

CONSOLE_SCRIPT = Path(sys.executable).parent / "spacetime"
SPACETIME = [str(CONSOLE_SCRIPT)] if CONSOLE_SCRIPT.exists() else SPACETIME_COMMAND

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]


def start(config_dir: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*SPACETIME, *args],
        env=cli_environment(config_dir, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float = 120) -> Result:
    out, err = process.communicate(timeout=timeout)
    return Result(process.returncode, out, err)


def wait_for(condition: Callable[[], bool], timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def lock_owner_pid(lock_path: Path) -> int | None:
    try:
        owner = LockOwner.parse(lock_path.read_text())
    except FileNotFoundError:
        return None
    return None if owner is None else owner.pid


def start_holder(config_dir: Path, nickname: str = "held", **env: str) -> subprocess.Popen[str]:
    """A `server add` that sleeps for a minute while holding the lock (before changing anything)."""
    holder = start(
        config_dir,
        "server",
        "add",
        f"http://{nickname}.example:3000",
        "--name",
        nickname,
        "--no-fingerprint",
        SPACETIME_TEST_HOLD_LOCK_SECONDS="60",
        **env,
    )
    lock_path = config_dir / "cli.lock"
    wait_for(lambda: lock_owner_pid(lock_path) == holder.pid, what="the holder to take the lock")
    return holder


def nicknames(config_path: Path) -> list[str | None]:
    return [server.nickname for server in read_config(config_path).servers()]


def temp_files(config_dir: Path) -> list[str]:
    return [name for name in os.listdir(config_dir) if name.endswith(".tmp")]


def test_a_hundred_concurrent_server_adds_all_land(config_dir: Path, config_path: Path):
    # Default lock timeout: the queue moves, so nobody gives up even when last in line.
    processes = [
        start(
            config_dir,
            "server",
            "add",
            f"http://10.0.{n // 200}.{n % 200}:3000",
            "--name",
            f"s{n}",
            "--no-fingerprint",
        )
        for n in range(100)
    ]
    results = [finish(process, timeout=200) for process in processes]
    for result in results:
        assert result.code == 0, result
        assert "Traceback" not in result.err and "error:" not in result.err, result.err
    assert sorted(nicknames(config_path)) == sorted(["local", *(f"s{n}" for n in range(100))])
    assert os.listdir(config_dir) == ["cli.toml"]  # no lock file, no temp file


def test_a_holder_killed_with_sigkill_does_not_block_the_next_command(config_dir: Path, config_path: Path):
    holder = start_holder(config_dir)
    holder.kill()
    holder.wait()
    result = finish(
        start(config_dir, "server", "add", "http://next:3000", "--name", "next", "--no-fingerprint")
    )
    assert result.code == 0, result
    assert "waiting for lock" not in result.err  # judged stale at first sight
    assert f"removed stale lock {config_dir / 'cli.lock'} left by pid {holder.pid}" in result.err
    assert nicknames(config_path) == ["local", "next"]
    assert os.listdir(config_dir) == ["cli.toml"]


def test_a_live_holder_makes_the_next_command_wait_then_fail_naming_it(config_dir: Path, config_path: Path):
    holder = start_holder(config_dir)
    try:
        waiter = finish(
            start(
                config_dir,
                "server",
                "add",
                "http://late:3000",
                "--name",
                "late",
                "--no-fingerprint",
                SPACETIME_CONFIG_LOCK_TIMEOUT="1",
            )
        )
        assert_one_line_error(waiter, contains=f"is still held by pid {holder.pid} on ")
        assert waiter.err_lines[0].startswith(
            f"waiting for lock {config_dir / 'cli.lock'} held by pid {holder.pid} on "
        )
        assert len(waiter.err_lines) == 3  # waiting, error, hint
        assert lock_owner_pid(config_dir / "cli.lock") == holder.pid
    finally:
        holder.send_signal(signal.SIGTERM)
        terminated = finish(holder)
    assert terminated.code == 128 + signal.SIGTERM
    assert terminated.err == ""
    assert not (config_dir / "cli.lock").exists()
    assert not config_path.exists()  # the holder was stopped before it changed anything


def test_ctrl_c_while_holding_the_lock_exits_130_quietly_and_releases_it(config_dir: Path):
    holder = start_holder(config_dir)
    holder.send_signal(signal.SIGINT)
    result = finish(holder)
    assert result.code == 130
    assert result.err.strip() == ""
    assert os.listdir(config_dir) == []


def test_ctrl_c_while_waiting_for_the_lock_leaves_the_holders_lock_alone(config_dir: Path):
    holder = start_holder(config_dir)
    try:
        waiter = start(config_dir, "server", "set-default", "local")
        wait_for(
            lambda: waiter.poll() is None and _stderr_has_waiting_line(waiter), what="the waiting message"
        )
        waiter.send_signal(signal.SIGINT)
        result = finish(waiter)
        assert result.code == 130
        assert lock_owner_pid(config_dir / "cli.lock") == holder.pid
    finally:
        holder.kill()
        holder.wait()


def _stderr_has_waiting_line(process: subprocess.Popen[str]) -> bool:
    # Reading one line blocks until the waiter prints it; the waiter prints nothing else before.
    line = process.stderr.readline()
    return line.startswith("waiting for lock")


def test_a_waiter_proceeds_as_soon_as_the_holder_finishes(config_dir: Path, config_path: Path):
    first = start(
        config_dir,
        "server",
        "add",
        "http://first:3000",
        "--name",
        "first",
        "--no-fingerprint",
        SPACETIME_TEST_HOLD_LOCK_SECONDS="1.5",
    )
    wait_for(lambda: lock_owner_pid(config_dir / "cli.lock") == first.pid, what="the first to take the lock")
    second = finish(
        start(config_dir, "server", "add", "http://second:3000", "--name", "second", "--no-fingerprint")
    )
    assert finish(first).code == 0
    assert second.code == 0, second
    assert [line for line in second.err_lines if line.startswith("waiting for lock")] == second.err_lines
    assert len(second.err_lines) == 1
    assert nicknames(config_path) == ["local", "first", "second"]
    assert os.listdir(config_dir) == ["cli.toml"]


def test_a_crash_between_write_and_rename_never_tears_the_config(config_dir: Path, config_path: Path):
    assert (
        finish(
            start(config_dir, "server", "add", "http://one:3000", "--name", "one", "--no-fingerprint")
        ).code
        == 0
    )
    before = config_path.read_bytes()
    crashing = start(
        config_dir,
        "server",
        "add",
        "http://two:3000",
        "--name",
        "two",
        "--no-fingerprint",
        SPACETIME_TEST_PAUSE_BEFORE_RENAME_SECONDS="60",
    )
    wait_for(lambda: bool(temp_files(config_dir)), what="the temp file of the save")
    crashing.kill()
    crashing.wait()
    assert config_path.read_bytes() == before
    assert nicknames(config_path) == ["local", "one"]
    listed = finish(start(config_dir, "server", "list", "--json"))  # readers need no lock
    assert listed.code == 0 and '"one"' in listed.out
    after = finish(
        start(config_dir, "server", "add", "http://three:3000", "--name", "three", "--no-fingerprint")
    )
    assert after.code == 0, after
    assert nicknames(config_path) == ["local", "one", "three"]
    assert os.listdir(config_dir) == ["cli.toml"]  # the stale lock and the orphaned temp file are gone


def test_random_kills_during_saves_always_leave_a_whole_config(config_dir: Path, config_path: Path):
    chooser = random.Random(1196)
    processes = [
        start(config_dir, "server", "add", f"http://k{n}:3000", "--name", f"k{n}", "--no-fingerprint")
        for n in range(16)
    ]
    for process in processes:
        time.sleep(chooser.uniform(0, 0.08))
        process.kill()
    for process in processes:
        process.wait()
    if config_path.exists():
        survivors = nicknames(config_path)  # parses and validates: not torn
        assert survivors[0] == "local" and set(survivors[1:]) <= {f"k{n}" for n in range(16)}
    final = finish(
        start(config_dir, "server", "add", "http://final:3000", "--name", "final", "--no-fingerprint")
    )
    assert final.code == 0, final
    assert nicknames(config_path)[-1] == "final"
    assert os.listdir(config_dir) == ["cli.toml"]


def test_a_usage_error_exits_before_any_lock_is_taken(config_dir: Path):
    # With the hold hook set, a command that took the lock would sit on it for a minute.
    started = time.monotonic()
    result = finish(start(config_dir, "server", "add", "http://x:1", SPACETIME_TEST_HOLD_LOCK_SECONDS="60"))
    assert time.monotonic() - started < 30
    assert_one_line_error(result, contains="Missing option '--name'")
    assert result.code == 2
    assert not config_dir.exists()


def test_comments_in_a_hand_edited_config_survive_server_add(config_dir: Path, config_path: Path):
    hand_edited = (
        "# written by me\n"
        'default_server = "local"  # keep this one\n'
        "\n"
        "# my machine\n"
        "[[server_configs]]\n"
        'nickname = "local"\n'
        'host = "127.0.0.1:3000"\n'
        'protocol = "http"\n'
        "\n"
        "# trailing notes\n"
    )
    config_dir.mkdir()
    config_path.write_text(hand_edited)
    result = finish(
        start(config_dir, "server", "add", "http://new:3000", "--name", "new", "--no-fingerprint")
    )
    assert result.code == 0, result
    text = config_path.read_text()
    assert text.startswith(hand_edited.removesuffix("# trailing notes\n"))
    assert text.rstrip().endswith("# trailing notes")
    assert 'nickname = "new"' in text


def test_errors_from_a_real_process_are_one_line(config_dir: Path):
    for args in (("server", "remove", "nope"), ("bogus",), ("server", "ping", "http://127.0.0.1:1")):
        assert_one_line_error(finish(start(config_dir, *args)))
    assert not (config_dir / "cli.lock").exists()
