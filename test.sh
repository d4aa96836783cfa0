#!/usr/bin/env bash
# Sets up .venv (if needed), runs the checks (ruff, ruff format, mypy) and the whole test suite.
# `./test.sh --fast` runs every test not marked `slow` instead (under a minute on 2 cores); CI runs everything.
# Other arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'
.venv/bin/ruff check src tests bench examples
.venv/bin/ruff format --check src tests bench examples
.venv/bin/mypy  # the files and the per-package strictness are in pyproject.toml's [tool.mypy]
tier=()
if [ "${1:-}" = "--fast" ]; then
    shift
    tier=(-m "not slow")
fi
# end-to-end tests spend much of their time waiting on server and CLI processes: at least 4 workers even on 2 cores
cores=$(nproc 2>/dev/null || echo 2)
.venv/bin/python -m pytest -n "${PYTEST_WORKERS:-$((cores > 4 ? cores : 4))}" -q "${tier[@]}" "$@"
