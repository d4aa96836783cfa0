"""Fixtures shared by every test package: a real server process on a free loopback port."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# a shell starts a background job with SIGINT ignored, and an ignored signal stays ignored across exec: the CLI
# processes that tests stop with Ctrl-C would not hear it. A handled signal is reset to the default at exec.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# runs the server under an open-file limit set by the interpreter itself (no preexec_fn: unsafe with threads)
WITH_OPEN_FILES = (
    "import resource, runpy; resource.setrlimit(resource.RLIMIT_NOFILE, ({}, {})); "
    "runpy.run_module('spacetimedb.server', run_name='__main__', alter_sys=True)"
)


@dataclass
class ServerProcess:
    process: subprocess.Popen[str]
    url: str
    data_dir: Path | None
    pg_port: int | None = None  # with --pg-port: where the PostgreSQL protocol is served

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)

    def shut_down(self) -> None:
        """Stop it if it still runs, and close the pipe of its output."""
        if self.process.poll() is None:
            self.stop()
        if self.process.stdout is not None:
            self.process.stdout.close()


def start_server(
    data_dir: Path | None,
    extra_env: dict[str, str] | None = None,
    timeout: float = 30.0,
    extra_args: list[str] | None = None,
    open_files: tuple[int, int] | None = None,
    log_path: Path | None = None,
) -> ServerProcess:
    """Start ``python -m spacetimedb.server`` on 127.0.0.1:0 and wait until it prints where it listens.

    ``extra_args`` go to the server's command line (e.g. ``["--reducer-budget", "1"]``); ``open_files`` is the
    (soft, hard) RLIMIT_NOFILE it starts with; ``log_path``, a file for its log (stderr) instead of the test's
    output."""
    args = [sys.executable, "-m", "spacetimedb.server"]
    if open_files is not None:
        args = [sys.executable, "-c", WITH_OPEN_FILES.format(*open_files)]
    args += ["--listen-addr", "127.0.0.1:0"]
    args += ["--data-dir", str(data_dir)] if data_dir is not None else ["--in-memory"]
    args += extra_args or []
    env = dict(os.environ, **(extra_env or {}))
    with log_path.open("ab") if log_path is not None else contextlib.nullcontext() as log:  # None: inherited
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, text=True, env=env, cwd=ROOT)
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    pg_port = None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        if line.startswith("postgres on "):
            pg_port = int(line.split()[-1].rsplit(":", 1)[1])
        if line.startswith("listening on "):
            return ServerProcess(process, line.split()[-1], data_dir, pg_port)
    process.kill()
    raise RuntimeError(f"the server did not start (exit code {process.poll()})")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A real server process with its own data directory, stopped (gracefully) after the test."""
    proc = start_server(tmp_path / "data")
    try:
        yield proc
    finally:
        proc.shut_down()
