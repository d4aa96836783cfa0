"""Fixtures of the ported smoketests: the end-to-end ones (a real server per test file, `spacetime` as alice
and bob), plus ``python_module`` for writing a test's module source to a file to publish."""

from __future__ import annotations

import functools
import inspect
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cli_e2e.conftest import alice, bob, db_name, shared_server
from tests.smoketests.ledger import upstream_tests

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


@functools.cache
def _upstream_names() -> frozenset[str]:
    return frozenset(test.name for test in upstream_tests())


def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: Any) -> pytest.Function | None:
    """Collect a port's test kept under its upstream name when that name lacks the ``test_`` prefix
    (``cli_can_publish_...``, ``config_with_invalid_field_shows_error``): the ledger matches names exactly."""
    if (
        isinstance(collector, pytest.Module)
        and inspect.isfunction(obj)
        and obj.__module__ == collector.obj.__name__
        and not name.startswith("test_")
        and name in _upstream_names()
    ):
        return pytest.Function.from_parent(collector, name=name)
    return None
