"""A server with small snapshots and segments for the operations tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ServerProcess, start_server

from .helpers import SMALL_STORAGE


@pytest.fixture
def ops_server(tmp_path: Path) -> Iterator[ServerProcess]:
    server = start_server(tmp_path / "data", extra_args=SMALL_STORAGE)
    try:
        yield server
    finally:
        server.shut_down()
