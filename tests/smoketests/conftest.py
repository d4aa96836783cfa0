"""Fixtures of the ported smoketests: the end-to-end ones (a real server per test file, `spacetime` as alice
and bob), plus ``python_module`` for writing a test's module source to a file to publish."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli_e2e.conftest import alice, bob, db_name, shared_server

__all__ = ["alice", "bob", "db_name", "shared_server", "python_module"]


@pytest.fixture
def python_module(tmp_path: Path) -> Callable[[str], Path]:
    """Write a module's source (dedented) to a fresh file and return its path, for ``publish -p``."""
    count = 0

    def write(source: str) -> Path:
        nonlocal count
        count += 1
        path = tmp_path / f"module_{count}.py"
        path.write_text(textwrap.dedent(source))
        return path

    return write
