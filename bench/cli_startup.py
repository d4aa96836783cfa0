"""Wall time of `spacetime --help` (or any other arguments), as a user would feel it.

    .venv/bin/python bench/cli_startup.py                 # spacetime --help, 30 runs
    .venv/bin/python bench/cli_startup.py -n 50 -- server list

The budget for `spacetime --help` is 300 ms; the command modules, rich, tomlkit and http are not imported
for it (tests/cli/test_cli_commands.py checks the imports, this script only measures).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET_MS = 300.0


def spacetime_command() -> list[str]:
    script = Path(sys.executable).parent / "spacetime"
    return [str(script)] if script.exists() else [sys.executable, "-m", "spacetimedb.cli.main"]


def measure(args: list[str], runs: int, warmup: int) -> list[float]:
    env = dict(os.environ)
    env["SPACETIME_CONFIG_DIR"] = tempfile.mkdtemp(prefix="spacetime-bench-")
    command = [*spacetime_command(), *args]
    timings = []
    for index in range(warmup + runs):
        started = time.perf_counter()
        completed = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        elapsed_ms = (time.perf_counter() - started) * 1000
        if completed.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed: {completed.stderr.decode().strip()}")
        if index >= warmup:
            timings.append(elapsed_ms)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", "--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "args", nargs="*", default=["--help"], help="arguments for spacetime (default: --help)"
    )
    options = parser.parse_args()
    timings = measure(options.args, options.runs, options.warmup)
    label = "spacetime " + " ".join(options.args)
    median = statistics.median(timings)
    print(
        f"{label}: median {median:.1f} ms, min {min(timings):.1f} ms, mean {statistics.fmean(timings):.1f} ms, "
        f"max {max(timings):.1f} ms over {len(timings)} runs"
    )
    if options.args == ["--help"]:
        verdict = "within" if median < BUDGET_MS else "OVER"
        print(f"{verdict} the {BUDGET_MS:.0f} ms budget")


if __name__ == "__main__":
    main()
