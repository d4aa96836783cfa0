"""Shared helpers for sandbox tests: run a snippet in a fresh child interpreter (which may confine itself, as
a worker does) and read back what it reported.

Confinement is irreversible and covers the whole process, so it never happens in the pytest process itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from spacetimedb.sandbox import probe

HERE = Path(__file__).resolve().parent
WITHOUT_KERNEL_SUPPORT = HERE / "without_kernel_support.py"

SUPPORT = probe()

needs_linux = pytest.mark.skipif(
    not sys.platform.startswith("linux"),
    reason=f"the sandbox confines Linux processes only, and this is {sys.platform}",
)
needs_sandbox = pytest.mark.skipif(
    not SUPPORT.complete,
    reason="needs Linux on x86_64 or aarch64 with Landlock and seccomp: " + "; ".join(SUPPORT.problems),
)

# Runs in the child before the test's snippet. ``attempt`` records what an action did under a name; the
# results are printed as one JSON line at the end. Nothing here imports json (or anything a test may want to
# import for the first time after confinement).
_PRELUDE = """
import os
import sys
from pathlib import Path

from spacetimedb.sandbox import (
    SandboxError,
    SandboxPolicy,
    apply_process_limits,
    confine,
    default_readable_paths,
    forbid_new_threads,
    probe,
    restrict_filesystem,
    restrict_syscalls,
)

ARGS = {args!r}
RESULTS = {{}}


def attempt(name, action):
    try:
        value = action()
    except BaseException as error:  # whatever happened is the result
        RESULTS[name] = {{
            "ok": False,
            "error": type(error).__name__,
            "errno": getattr(error, "errno", None),
            "message": str(error),
        }}
    else:
        if not isinstance(value, (str, int, float, bool, list, dict, type(None))):
            value = repr(value)
        RESULTS[name] = {{"ok": True, "value": value}}


def status_field(name):
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return value.strip()
    return None


def worker_policy(**overrides):
    # What a worker would use: its database directory writable, the interpreter and project readable.
    fields = dict(writable=(Path(ARGS["db"]),), readable=default_readable_paths())
    fields.update(overrides)
    return SandboxPolicy(**fields)

"""

_EPILOGUE = """

import json

print(json.dumps(RESULTS), flush=True)
"""


@dataclass
class ChildResult:
    returncode: int
    results: dict[str, Any]
    stdout: str
    stderr: str

    def __getitem__(self, name: str) -> dict[str, Any]:
        assert name in self.results, f"the child recorded no {name!r}: {self.results}\n{self.stderr}"
        return self.results[name]


def run_child(
    body: str,
    args: dict[str, Any] | None = None,
    pass_fds: Sequence[int] = (),
    launcher: Sequence[str] = (),
    expect_report: bool = True,
    timeout: float = 60.0,
) -> ChildResult:
    """Run ``body`` (Python, with the prelude's helpers and ``ARGS = args``) in ``python -I`` and return what
    it reported. ``launcher`` is a command prefix (e.g. the without-kernel-support script)."""
    program = _PRELUDE.format(args=args or {}) + textwrap.dedent(body) + _EPILOGUE
    command = [*launcher, sys.executable, "-I", "-c", program]
    completed = subprocess.run(
        command, capture_output=True, text=True, pass_fds=pass_fds, timeout=timeout, cwd=HERE, check=False
    )
    results: dict[str, Any] = {}
    lines = completed.stdout.strip().splitlines()
    if expect_report:
        assert completed.returncode == 0 and lines, (
            f"the child failed (exit code {completed.returncode})\nstdout:\n{completed.stdout}\n"
            f"stderr:\n{completed.stderr}"
        )
        results = json.loads(lines[-1])
    return ChildResult(completed.returncode, results, completed.stdout, completed.stderr)


def assert_denied(result: dict[str, Any], error: str = "PermissionError", errno: int | None = None) -> None:
    """The action failed with exception type ``error`` (and errno ``errno``, when given)."""
    assert not result["ok"], f"expected {error}, but it succeeded: {result}"
    assert result["error"] == error, result
    if errno is not None:
        assert result["errno"] == errno, result


def assert_allowed(result: dict[str, Any]) -> Any:
    """The action succeeded; its value."""
    assert result["ok"], f"expected success: {result}"
    return result["value"]
