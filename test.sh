#!/usr/bin/env bash
# Sets up .venv (if needed), runs the checks (ruff, ruff format, mypy) and the whole test suite.
# `./test.sh --fast` runs every test not marked `slow` instead (under a minute on 2 cores); CI runs everything.
# Other arguments go to pytest.
# The whole suite runs on the compiled hot path when it is built (spacetimedb.native), then the unit tests of
# the compiled layers run again on their pure-Python sources (SPACETIMEDB_PURE_PYTHON=1): both paths are tested.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
# Installing compiles the hot path (about a minute): only when what the install is built from has changed since
# the last one (the stamp), or when the installed package does not import.
stamp=.venv/.spacetimedb-install-stamp
inputs=$(.venv/bin/python - <<'PYEOF'
import ast, hashlib, os, sys

native = "src/spacetimedb/native.py"
tree = ast.parse(open(native, encoding="utf-8").read())
(compiled,) = [ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.AnnAssign) and n.target.id == "COMPILED"]
digest = hashlib.sha256(f"{sys.version}\0{os.environ.get('SPACETIMEDB_BUILD_NATIVE', '')}".encode())
for path in ["pyproject.toml", "setup.py", native, *(f"src/{p}" for p in compiled)]:
    digest.update(f"\0{path}\0".encode() + open(path, "rb").read())
print(digest.hexdigest())
PYEOF
)
if [ "$(cat "$stamp" 2>/dev/null)" != "$inputs" ] || ! .venv/bin/python -c "import spacetimedb, pytest" 2>/dev/null; then
    rm -f "$stamp"
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q -e '.[test]'
    echo "$inputs" >"$stamp"
fi
.venv/bin/ruff check setup.py src tests bench examples
.venv/bin/ruff format --check setup.py src tests bench examples
.venv/bin/mypy  # the files and the per-package strictness are in pyproject.toml's [tool.mypy]
tier=()
pure_pass=0  # only after the whole suite ran compiled: --fast and a chosen set of tests run one path
if [ "${1:-}" = "--fast" ]; then
    shift
    tier=(-m "not slow")
elif [ $# -eq 0 ]; then
    pure_pass=1
fi
hot_path() { .venv/bin/python -c 'import spacetimedb.native as n; print("hot path:", n.status())'; }
# end-to-end tests spend much of their time waiting on server and CLI processes: at least 4 workers even on 2 cores
cores=$(nproc 2>/dev/null || echo 2)
workers=${PYTEST_WORKERS:-$((cores > 4 ? cores : 4))}
hot_path
failed=0  # both passes run; either failing fails the whole
.venv/bin/python -m pytest -n "$workers" -q "${tier[@]}" "$@" || failed=$?
if [ "$pure_pass" = 1 ] && .venv/bin/python -c 'import spacetimedb.native as n; exit(not n.active())'; then
    # the unit tests of the compiled modules' layers again, on their sources (under a minute on 2 cores)
    export SPACETIMEDB_PURE_PYTHON=1
    hot_path
    .venv/bin/python -m pytest -n "$workers" -q -m "not slow" \
        tests/datastore tests/commitlog tests/db tests/durability tests/host tests/module \
        tests/protocol tests/test_native.py || failed=$?
fi
exit "$failed"
