"""The call clock and the watchdog that reads it: a budget that runs out stops the call, a disarmed or
unregistered clock stops nothing."""

from __future__ import annotations

import threading
import time

import pytest

from spacetimedb.host.watchdog import CallCancelled, CallClock, ReducerTimeout, register, unregister


def spin(seconds: float) -> str:
    """Python bytecode for ``seconds`` (an asynchronous exception lands between two bytecodes)."""
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        pass
    return "finished"


def test_a_call_past_its_budget_is_stopped() -> None:
    clock = CallClock()
    register(clock)
    try:
        started = time.monotonic()
        with pytest.raises(ReducerTimeout):
            clock.run(0.05, lambda: spin(5.0))
        assert time.monotonic() - started < 2.0
        assert clock.deadline == 0  # disarmed on the way out
        assert clock.run(1.0, lambda: "fine") == "fine"  # and usable again
    finally:
        unregister(clock)


def test_an_unregistered_clock_is_not_watched() -> None:
    clock = CallClock()
    register(clock)
    unregister(clock)
    assert clock.run(0.01, lambda: spin(0.3)) == "finished"


def test_interrupt_stops_only_the_named_call() -> None:
    clock = CallClock()
    register(clock)
    try:
        armed = threading.Event()

        def call() -> str:
            armed.set()
            return spin(5.0)

        def interrupt() -> None:
            armed.wait(5)
            assert not clock.interrupt("someone else")
            assert clock.interrupt("mine")

        helper = threading.Thread(target=interrupt)
        helper.start()
        with pytest.raises(CallCancelled):
            clock.run(10.0, call, token="mine")
        helper.join(5)
        assert not clock.interrupt("mine")  # nothing in progress any more
    finally:
        unregister(clock)


def test_a_held_step_past_the_budget_finishes_and_the_next_step_is_refused() -> None:
    clock = CallClock()
    register(clock)
    try:

        def call() -> str:
            held = clock.hold()
            assert spin(0.3) == "finished"  # past the budget, held: not stopped
            clock.resume(held)  # nor now: what reports the held step must not be cut short
            assert clock.deadline == 0 and clock.tripped is ReducerTimeout
            clock.checkpoint()  # the next step does not begin
            return spin(5.0)

        with pytest.raises(ReducerTimeout):
            clock.run(0.05, call)
        assert clock.tripped is None and clock.deadline == 0
    finally:
        unregister(clock)


def test_a_call_resumed_within_its_budget_is_watched_again() -> None:
    clock = CallClock()
    register(clock)
    try:

        def call() -> str:
            clock.resume(clock.hold())
            clock.checkpoint()  # within the budget: passes
            return spin(5.0)  # stopped by the watchdog

        started = time.monotonic()
        with pytest.raises(ReducerTimeout):
            clock.run(0.2, call)
        assert time.monotonic() - started < 2.0
    finally:
        unregister(clock)


def test_hold_after_the_budget_ran_out_raises_the_timeout_instead() -> None:
    clock = CallClock()  # not watched: the test plays the watchdog

    def call() -> None:
        clock.tripped = ReducerTimeout  # sent, and (in compiled code) not raised yet
        clock.hold()

    with pytest.raises(ReducerTimeout):
        clock.run(5.0, call)
    assert clock.tripped is None and clock.deadline == 0
    assert clock.run(1.0, lambda: "fine") == "fine"


def test_hold_without_a_call_in_progress_does_nothing() -> None:
    clock = CallClock()
    register(clock)
    try:
        with pytest.raises(ReducerTimeout):
            clock.run(0.05, lambda: spin(5.0))  # a call that ran out: its timeout is over with it
        held = clock.hold()
        clock.resume(held)
        assert held == 0 and clock.deadline == 0 and clock.tripped is None
    finally:
        unregister(clock)
