#!/usr/bin/env bash
# The quickstart, end to end: set up .venv (if needed), start a local server in the background (or reuse the
# one already running there), publish examples/chat/quickstart_chat.py as `quickstart-chat`, call its
# send_message reducer, and show the message table.
#
# Environment overrides (mostly for tests): SPACETIME_RUN_PORT (default 3000), SPACETIME_RUN_DATA_DIR (default:
# `spacetime start`'s own, ~/.local/share/spacetime/data), SPACETIME_RUN_MESSAGE (the message sent).
set -euo pipefail
cd "$(dirname "$0")"

PORT=${SPACETIME_RUN_PORT:-3000}
URL="http://127.0.0.1:$PORT"
DATABASE=quickstart-chat
MESSAGE=${SPACETIME_RUN_MESSAGE:-Hello from run.sh!}
STATE_DIR="${XDG_STATE_HOME:-$HOME/.local/state}/spacetime"
LOG_FILE="$STATE_DIR/server-$PORT.log"
PID_FILE="$STATE_DIR/server-$PORT.pid"
START_TIMEOUT_SECONDS=60

say() { printf '\n==> %s\n' "$*"; }
fail() { printf 'run.sh: %s\n' "$*" >&2; exit 1; }

# -- 1. the virtual environment ------------------------------------------------------------------------------
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
    say "Creating .venv with $PY"
    "$PY" -m venv .venv
fi
if [ ! -x .venv/bin/spacetime ] || ! .venv/bin/python -c 'import spacetimedb' >/dev/null 2>&1; then
    say "Installing spacetimedb-py into .venv (pip install -e .)"
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q -e .
fi
SPACETIME=.venv/bin/spacetime

# -- 2. a server on 127.0.0.1:$PORT ---------------------------------------------------------------------------
server_is_up() { "$SPACETIME" server ping "$URL" >/dev/null 2>&1; }

STARTED_PID=""
if server_is_up; then
    say "Reusing the server already running at $URL"
else
    say "Starting a server at $URL (log: $LOG_FILE)"
    mkdir -p "$STATE_DIR"
    start_args=(start --listen-addr "127.0.0.1:$PORT")
    if [ -n "${SPACETIME_RUN_DATA_DIR:-}" ]; then
        start_args+=(--data-dir "$SPACETIME_RUN_DATA_DIR")
    fi
    # setsid/nohup: the server outlives this script and a Ctrl-C typed into it.
    if command -v setsid >/dev/null 2>&1; then
        setsid nohup "$SPACETIME" "${start_args[@]}" >"$LOG_FILE" 2>&1 </dev/null &
    else
        nohup "$SPACETIME" "${start_args[@]}" >"$LOG_FILE" 2>&1 </dev/null &
    fi
    STARTED_PID=$!
    echo "$STARTED_PID" >"$PID_FILE"
    waited=0
    until server_is_up; do
        if ! kill -0 "$STARTED_PID" 2>/dev/null; then
            tail -n 5 "$LOG_FILE" >&2 || true
            fail "the server exited before it was ready (its log: $LOG_FILE)"
        fi
        if [ "$waited" -ge $((START_TIMEOUT_SECONDS * 5)) ]; then
            fail "the server did not answer at $URL within ${START_TIMEOUT_SECONDS}s (its log: $LOG_FILE)"
        fi
        sleep 0.2
        waited=$((waited + 1))
    done
    grep -m1 '^data in ' "$LOG_FILE" || true
fi

# -- 3. publish, call, query -----------------------------------------------------------------------------------
say "spacetime publish $DATABASE -p examples/chat/quickstart_chat.py -y"
"$SPACETIME" publish "$DATABASE" -p examples/chat/quickstart_chat.py -y -s "$URL"

# The reducer argument is JSON: json.dumps quotes and escapes the message.
ARGUMENT=$(.venv/bin/python -c 'import json, sys; print(json.dumps(sys.argv[1]))' "$MESSAGE")
say "spacetime call $DATABASE send_message '$ARGUMENT'"
"$SPACETIME" call "$DATABASE" send_message "$ARGUMENT" -s "$URL"

say "spacetime sql $DATABASE \"SELECT * FROM message\""
"$SPACETIME" sql "$DATABASE" "SELECT * FROM message" -s "$URL"

# -- 4. what next ------------------------------------------------------------------------------------------------
echo
if [ -n "$STARTED_PID" ]; then
    echo "The server keeps running in the background (pid $STARTED_PID, log: $LOG_FILE)."
    echo "Stop it with: kill $STARTED_PID      (or: kill \$(cat $PID_FILE))"
else
    echo "The server at $URL was already running before this script; it was left as it was."
    if [ -f "$PID_FILE" ]; then
        echo "If run.sh started it earlier: kill \$(cat $PID_FILE)   (its log: $LOG_FILE)"
    fi
fi
echo "Try next: .venv/bin/spacetime logs $DATABASE -s $URL, or .venv/bin/spacetime describe $DATABASE -s $URL"
