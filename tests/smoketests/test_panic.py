"""Upstream's cluster/panic.rs: a reducer that fails leaves the module usable, and a reducer's error reaches the
module log; the modules panic and panic-error rewritten in Python."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli_e2e.conftest import User
from tests.smoketests.runtime_helpers import Smoke, publish

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

# Upstream's `first` panics while it holds a RefCell borrow of module state; `second` borrows it again. Ours
# raises while it holds a module-level lock; `second` takes it again (with a bound, so a leaked hold fails).
PANIC = """
    import threading

    import spacetimedb
    from spacetimedb import ReducerContext, reducer

    STATE = threading.Lock()


    @reducer
    def first(ctx: ReducerContext) -> None:
        with STATE:
            raise RuntimeError("explicit panic")


    @reducer
    def second(ctx: ReducerContext) -> None:
        if not STATE.acquire(timeout=1):
            raise RuntimeError("the module state is still held by the failed call")
        STATE.release()
        spacetimedb.log.info("Test Passed")
"""

PANIC_ERROR = """
    from spacetimedb import ReducerContext, reducer


    @reducer
    def fail(ctx: ReducerContext) -> None:
        raise RuntimeError("oopsie :(")
"""


@pytest.fixture
def deploy(alice: User, db_name: str, python_module: Callable[[str], Path]) -> Callable[[str], Smoke]:
    return lambda source: publish(alice, db_name, python_module(source))


def test_panic(deploy: Callable[[str], Smoke]) -> None:
    """Upstream test_panic: the failing call fails, the next call succeeds and logs."""
    smoke = deploy(PANIC)
    assert smoke.call_result("first").code != 0
    smoke.call("second")
    assert any("Test Passed" in message for message in smoke.logs(2))


def test_reducer_error_message(deploy: Callable[[str], Smoke]) -> None:
    """Upstream test_reducer_error_message: the call fails and the reducer's error message is in the log."""
    smoke = deploy(PANIC_ERROR)
    assert smoke.call_result("fail").code != 0
    assert any("oopsie :(" in message for message in smoke.logs(2))
