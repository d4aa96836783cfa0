"""Wire compatibility with the official TypeScript SDK (npm ``spacetimedb`` 2.10.x) and our generated bindings.

A real server runs the quickstart chat module. Our ``--lang typescript`` bindings are type-checked (strict)
against the SDK's own declarations, then bundled with ``node/chat_scenario.ts`` and run by Node: a watcher client
subscribes first, a sender client sets its name, sends messages, gets a reducer error and reconnects with its
token; a Python SDK client watches too. Every SDK callback's observations come back as JSON lines; any error or
warning the SDK reports fails the test.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from spacetimedb.client import DbConnection
from spacetimedb.codegen import generate

from .helpers import ROOT, publish, write_bindings
from .node_tools import NodeTools, node_tools

pytestmark = [pytest.mark.node, pytest.mark.slow]

SCENARIO = Path(__file__).parent / "node" / "chat_scenario.ts"
KITCHEN_SINK = ROOT / "tests" / "codegen" / "kitchen_sink.py"
TSCONFIG = {
    "compilerOptions": {
        "target": "es2022",
        "module": "esnext",
        "moduleResolution": "bundler",
        "strict": True,
        "noEmit": True,
        "skipLibCheck": True,
        "types": ["node"],
    },
    "files": ["chat_scenario.ts", "kitchen_sink_bindings/index.ts"],
}
# the long one makes the server's frames big enough to be gzip-compressed, which the SDK must inflate
MESSAGES = ["hello from typescript", "second message", "long " + "x" * 3000]


def _run(args: list[str], cwd: Path, timeout: float = 120) -> str:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _prepare(tools: NodeTools, work: Path) -> Path:
    """Bindings for the chat (and, for type-checking only, the kitchen-sink module), checked and bundled."""
    write_bindings(ROOT / "examples" / "chat" / "quickstart_chat.py", "typescript", work / "module_bindings")
    write_bindings(KITCHEN_SINK, "typescript", work / "kitchen_sink_bindings", include_private=True)
    for source in ("chat_scenario.ts", "harness.ts"):
        (work / source).write_text((SCENARIO.parent / source).read_text())
    (work / "tsconfig.json").write_text(json.dumps(TSCONFIG))
    (work / "node_modules").symlink_to(tools.node_modules, target_is_directory=True)
    _run([tools.bin("tsc"), "-p", "tsconfig.json"], work)
    bundle = work / "chat_scenario.mjs"
    _run(
        [tools.bin("esbuild"), "chat_scenario.ts", "--bundle", "--platform=node", "--format=esm"]
        + ["--packages=external", f"--outfile={bundle.name}", "--log-level=warning"],
        work,
    )
    return bundle


def bundle_scenario(tools: NodeTools, work: Path, name: str) -> Path:
    """``node/<name>.ts`` and the harness it imports, type-checked (strict) against the SDK and bundled in ``work``
    (which holds ``module_bindings/``); returns the bundle to run with Node."""
    for source in (f"{name}.ts", "harness.ts"):
        (work / source).write_text((SCENARIO.parent / source).read_text())
    (work / "tsconfig.json").write_text(json.dumps({**TSCONFIG, "files": [f"{name}.ts"]}))
    (work / "node_modules").symlink_to(tools.node_modules, target_is_directory=True)
    _run([tools.bin("tsc"), "-p", "tsconfig.json"], work)
    bundle = work / f"{name}.mjs"
    _run(
        [tools.bin("esbuild"), f"{name}.ts", "--bundle", "--platform=node", "--format=esm"]
        + ["--packages=external", f"--outfile={bundle.name}", "--log-level=warning"],
        work,
    )
    return bundle


def _events(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


class PythonWatcher:
    """A Python SDK client in the same chat, to see the TypeScript client's changes live."""

    def __init__(self, url: str, database: str = "chat") -> None:
        self.messages: list[tuple[str, str]] = []
        self.names: list[str | None] = []
        self.applied = threading.Event()
        self.conn = DbConnection.builder().with_uri(url).with_database_name(database).build()
        self.conn.db.message.on_insert(self._message)
        self.conn.db.user.on_update(lambda ctx, old, new: self.names.append(new.name))
        self.conn.subscription_builder().on_applied(lambda ctx: self.applied.set()).subscribe(
            ["SELECT * FROM user", "SELECT * FROM message"]
        )
        self.conn.run_threaded()

    def _message(self, ctx: Any, message: Any) -> None:
        sender = ctx.db.user.identity.find(message.sender)
        self.messages.append((message.text, sender.name if sender else None))

    def saw_the_conversation(self) -> None:
        """The sender's messages arrived (within ten seconds), each with the sender's name, and its rename."""
        deadline = time.monotonic() + 10
        while len(self.messages) < len(MESSAGES) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.messages == [(text, "ts-alice") for text in MESSAGES]
        assert "ts-alice" in self.names


def run_chat_scenario(
    tools: NodeTools, bundle: Path, url: str, database: str, before_sending: Callable[[], bool] = lambda: True
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run ``bundle`` (the chat scenario) as a watcher and, once its subscription is applied (and
    ``before_sending`` says so), as the sender of ``MESSAGES``; both must finish without failures. Returns the
    sender's and the watcher's events."""
    node = [tools.node, *tools.node_flags, str(bundle), url, database]
    env = dict(os.environ, NO_COLOR="1")
    work = bundle.parent
    watcher = subprocess.Popen(
        [*node, "watcher", str(len(MESSAGES))],
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        watcher_lines = []
        assert watcher.stdout is not None
        for line in watcher.stdout:  # the sender starts once the watcher's subscription is applied
            watcher_lines.append(line)
            if '"event":"applied"' in line or '"event":"done"' in line:
                break
        assert before_sending()
        sender = subprocess.run(
            [*node, "sender", "ts-alice", *MESSAGES],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=90,
            env=env,
        )
        watcher_out, watcher_err = watcher.communicate(timeout=60)
        watcher_lines.append(watcher_out)
    finally:
        if watcher.poll() is None:
            watcher.kill()
    sender_events = _events(sender.stdout)
    watcher_events = _events("".join(watcher_lines))
    context = f"\nsender:\n{sender.stdout}\n{sender.stderr[-3000:]}\nwatcher:\n{''.join(watcher_lines)}\n{watcher_err[-3000:]}"
    assert sender.returncode == 0, context
    assert watcher.returncode == 0, context
    assert sender_events[-1] == {"event": "done", "failures": []}, context
    assert watcher_events[-1] == {"event": "done", "failures": []}, context
    return sender_events, watcher_events


def assert_sender_chatted(sender_events: list[dict[str, Any]], name_error: str) -> str:
    """The sender's side of the scenario: its identity, its own reducer events through its own callbacks, the
    cache, the module's error for an empty name (``name_error``), the reconnection. Returns the identity."""
    by_event = {e["event"]: e for e in sender_events}
    identity: str = by_event["connected"]["identity"]
    assert len(identity) == 64 and identity.startswith("c200")
    assert by_event["own_user_update"] == {
        "event": "own_user_update",
        "before": None,
        "after": "ts-alice",
        "tag": "Reducer",
        "reducer": "set_name",
    }
    assert by_event["name_set"]["cached"] == "ts-alice"
    assert by_event["messages_sent"]["seen"] == [
        {"text": text, "tag": "Reducer", "reducer": "send_message"} for text in MESSAGES
    ]
    assert by_event["messages_sent"]["cached"] == MESSAGES
    assert by_event["reducer_error"] == {
        "event": "reducer_error",
        "kind": "SenderError",
        "message": name_error,
    }
    assert by_event["reconnected"] == {"event": "reconnected", "identity": identity, "same": True}
    assert by_event["reapplied"] == {"event": "reapplied", "name": "ts-alice", "messages": len(MESSAGES)}
    return identity


def test_official_typescript_sdk_chats_through_our_server(server, tmp_path: Path) -> None:
    tools = node_tools()
    started = time.monotonic()
    publish(server.url, "chat")
    bundle = _prepare(tools, tmp_path)
    python_watcher = PythonWatcher(server.url)
    try:
        sender_events, watcher_events = run_chat_scenario(
            tools, bundle, server.url, "chat", lambda: python_watcher.applied.wait(30)
        )
    finally:
        python_watcher.conn.disconnect()
    identity = assert_sender_chatted(sender_events, "ValueError: Names must not be empty")

    # the watcher: the sender's changes live, as other clients' transactions
    watched = [e for e in watcher_events if e["event"] == "message"]
    assert [(m["text"], m["sender"], m["senderName"], m["tag"]) for m in watched] == [
        (text, identity, "ts-alice", "Transaction") for text in MESSAGES
    ]
    sent = [int(m["sent"]) for m in watched]
    assert sent == sorted(sent)
    inserted = [e for e in watcher_events if e["event"] == "user_insert"]
    assert {"identity": identity, "name": None, "tag": "Transaction"} in [
        {k: e[k] for k in ("identity", "name", "tag")} for e in inserted
    ]
    renamed = [e for e in watcher_events if e["event"] == "user_update" and e["identity"] == identity]
    assert (
        renamed[0]["before"] is None
        and renamed[0]["after"] == "ts-alice"
        and renamed[0]["tag"] == "Transaction"
    )

    python_watcher.saw_the_conversation()  # and a Python SDK client saw the same conversation
    print(f"TypeScript SDK scenario took {time.monotonic() - started:.1f}s (npm cache warm)")


def test_typescript_bindings_with_colliding_index_accessors_type_check(tmp_path: Path) -> None:
    """`count()`, `iter()`, `onInsert` stay the handle's own; the indexes `count`, `iter`, `insert` and `delete`
    are `countIndex`, ... (strict tsc against the SDK's declarations)."""
    from tests.codegen.test_codegen import colliding_raw_def

    tools = node_tools()
    work = tmp_path / "colliding"
    for relative, text in generate(colliding_raw_def(), "typescript").items():
        path = work / "colliding_bindings" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (work / "colliding_check.ts").write_text((SCENARIO.parent / "colliding_check.ts").read_text())
    (work / "tsconfig.json").write_text(json.dumps({**TSCONFIG, "files": ["colliding_check.ts"]}))
    (work / "node_modules").symlink_to(tools.node_modules, target_is_directory=True)
    _run([tools.bin("tsc"), "-p", "tsconfig.json"], work)
    # without the renames, the same check fails: `count` would be an index, not count()
    index_ts = work / "colliding_bindings" / "index.ts"
    index_ts.write_text(index_ts.read_text().replace("accessor: 'countIndex'", "accessor: 'count'"))
    result = subprocess.run(
        [tools.bin("tsc"), "-p", "tsconfig.json"], cwd=work, capture_output=True, text=True
    )
    assert result.returncode != 0 and "colliding_check.ts" in result.stdout, result.stdout
