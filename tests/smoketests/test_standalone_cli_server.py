"""Port of upstream's standalone/cli/server.rs: ``spacetime --root-dir DIR start`` listens at the
``listen_addr`` of ``DIR/config/cli.toml``, and ``--listen-addr`` wins over it."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.cli_e2e.conftest import SPACETIME, User, environment, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

NOT_APPLICABLE: dict[str, str] = {}

STARTUP_SECONDS = 60.0


def write_cli_toml(root: Path, listen_addr: str) -> None:
    (root / "config").mkdir(parents=True)
    (root / "config" / "cli.toml").write_text(f'listen_addr = "{listen_addr}"\n')


def start_and_ping(tmp_path: Path, root: Path, url: str, *extra: str) -> None:
    """Run ``spacetime --root-dir ROOT start EXTRA...`` until ``server ping URL`` succeeds, then stop it."""
    child = subprocess.Popen(
        [*SPACETIME, "--root-dir", str(root), "start", *extra],
        env=environment(tmp_path / "unused-config"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    pinger = User(tmp_path / "pinger", url)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while pinger("server", "ping", url, server=False).code != 0:
            assert child.poll() is None, child.communicate()[1]
            assert time.monotonic() < deadline, f"nothing answered at {url}"
            time.sleep(0.2)
    finally:
        child.terminate()
        child.communicate(timeout=60)


def test_cli_start_uses_listen_addr_from_cli_toml(tmp_path: Path):
    root = tmp_path / "root"
    listen_addr = f"127.0.0.1:{free_port()}"
    write_cli_toml(root, listen_addr)
    start_and_ping(tmp_path, root, f"http://{listen_addr}")
    assert (root / "data").is_dir()  # the data went under the root directory too


def test_cli_start_explicit_listen_addr_overrides_cli_toml(tmp_path: Path):
    root = tmp_path / "root"
    config_port = free_port()
    explicit_port = free_port()
    while explicit_port == config_port:
        explicit_port = free_port()
    write_cli_toml(root, f"127.0.0.1:{config_port}")
    explicit = f"127.0.0.1:{explicit_port}"
    start_and_ping(tmp_path, root, f"http://{explicit}", "--listen-addr", explicit)
