"""Upstream's cluster/logs_level_filter.rs: `spacetime logs --level` (that level and more severe) and
`--level-exact`, with the module logs-level-filter rewritten in Python. One database serves the three tests: each
reads the records of one call."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cli_e2e.conftest import User
from tests.conftest import ServerProcess
from tests.smoketests.runtime_helpers import Smoke, publish

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

LOGS_LEVEL_FILTER = """
import spacetimedb
from spacetimedb import ReducerContext, reducer


@reducer
def log_all_levels(ctx: ReducerContext) -> None:
    spacetimedb.log.trace("msg-trace")
    spacetimedb.log.debug("msg-debug")
    spacetimedb.log.info("msg-info")
    spacetimedb.log.warn("msg-warn")
    spacetimedb.log.error("msg-error")
"""

LEVELS = ("trace", "debug", "info", "warn", "error")


@pytest.fixture(scope="module")
def logged(shared_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Smoke]:
    """A database whose `log_all_levels` ran once."""
    workdir = tmp_path_factory.mktemp("logs-level-filter")
    module = workdir / "logs_level_filter.py"
    module.write_text(LOGS_LEVEL_FILTER)
    smoke = publish(User(workdir / "owner", shared_server.url), "logs-level-filter", module)
    smoke.call("log_all_levels")
    yield smoke


def shown(smoke: Smoke, *extra: str) -> set[str]:
    """Which of the five levels' messages `logs --format=json -n 100 EXTRA...` shows."""
    messages = smoke.logs(100, *extra)
    return {level for level in LEVELS if f"msg-{level}" in messages}


def test_logs_no_filter(logged: Smoke) -> None:
    """Upstream test_logs_no_filter: without --level every level is shown."""
    assert shown(logged) == set(LEVELS)


def test_logs_level_minimum(logged: Smoke) -> None:
    """Upstream test_logs_level_minimum: --level shows that level and the more severe ones."""
    assert shown(logged, "--level", "warn") == {"warn", "error"}
    assert shown(logged, "--level", "error") == {"error"}


def test_logs_level_exact(logged: Smoke) -> None:
    """Upstream test_logs_level_exact: --level-exact shows that level alone."""
    assert shown(logged, "--level", "info", "--level-exact") == {"info"}
    assert shown(logged, "--level", "debug", "--level-exact") == {"debug"}
