"""Module log levels: the log API and Python's `logging` write at their level, and `spacetime logs --level`
(`--level-exact`) filters as upstream does."""

from __future__ import annotations

import json

import pytest

from .conftest import MODULES, assert_one_line_error

pytestmark = pytest.mark.slow  # real processes or long runs: ./test.sh --fast leaves these out


def _messages(result) -> list[str]:
    assert result.code == 0, result
    return [json.loads(line)["message"] for line in result.out.splitlines()]


def _levels(result) -> dict[str, str]:
    assert result.code == 0, result
    return {record["message"]: record["level"] for record in map(json.loads, result.out.splitlines())}


def test_levels_are_written_and_filtered(alice, db_name):
    alice.publish(db_name, MODULES / "levels.py")
    assert alice("call", db_name, "speak").code == 0
    levels = _levels(alice("logs", db_name, "--json"))
    assert {m: levels[m] for m in levels if m.startswith(("api", "logging"))} == {
        "api trace": "Trace",
        "api debug": "Debug",
        "api info": "Info",
        "api warn": "Warn",
        "api error": "Error",
        "logging debug": "Debug",
        "logging info": "Info",
        "logging warning 7": "Warn",
        "logging error": "Error",
    }
    warn_up = _messages(alice("logs", db_name, "--json", "--level", "warn"))
    assert warn_up == ["api warn", "api error", "logging warning 7", "logging error"]
    exact = _messages(alice("logs", db_name, "--json", "--level", "INFO", "--level-exact"))
    assert [m for m in exact if m.startswith(("api", "logging"))] == ["api info", "logging info"]
    text = alice("logs", db_name, "--level", "error")
    assert text.code == 0 and "ERROR: speak" in text.out and "api warn" not in text.out
    assert_one_line_error(alice("logs", db_name, "--level-exact"), "--level-exact needs --level", code=2)
    assert_one_line_error(alice("logs", db_name, "--level", "loud"), "loud", code=2)
