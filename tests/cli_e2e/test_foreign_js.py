"""TypeScript modules (npm ``spacetimedb`` 2.10.1), published with ``spacetime publish -p DIR`` (bundled by the
CLI with esbuild, as ``spacetime build`` does with rolldown) and run by a real server's sandboxed worker in V8:
the keynote transfer, upstream's chat tutorial module driven by the official TypeScript SDK through bindings
``spacetime generate`` made from the running database, and hostile modules that fail alone."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.client.node_tools import SDK_VERSION, NodeTools, node_tools
from tests.conftest import ServerProcess, start_server

from .conftest import User, assert_one_line_error, v10_section

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow, pytest.mark.node]

PROJECTS = Path(__file__).resolve().parents[1] / "fixtures" / "ts_modules"
REDUCER_BUDGET_SECONDS = "1"
MODULE_MEMORY = str(768 << 20)  # so a module's V8 heap is limited to 192 MiB


@pytest.fixture(scope="module")
def tools() -> NodeTools:
    return node_tools(purpose="the TypeScript module tests")


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose reducers are stopped after a second, and whose workers have 768 MiB."""
    args = ["--reducer-budget", REDUCER_BUDGET_SECONDS, "--module-memory", MODULE_MEMORY]
    proc = start_server(tmp_path_factory.mktemp("server") / "data", extra_args=args)
    try:
        yield proc
    finally:
        proc.shut_down()


def project(tools: NodeTools, name: str, where: Path) -> Path:
    """A copy of the fixture project ``name`` whose node_modules is the test's npm cache."""
    copy = where / name
    shutil.copytree(PROJECTS / name, copy)
    (copy / "node_modules").symlink_to(tools.node_modules, target_is_directory=True)
    return copy


def tools_cache(tools: NodeTools) -> str:
    """Where the CLI installs its esbuild: shared by every test (the users' homes are per test)."""
    return str(tools.node_modules.parent.parent / "tools")


def publish(user: User, tools: NodeTools, database: str, directory: Path) -> None:
    result = user("publish", database, "-p", str(directory), "-y", SPACETIME_TOOLS_CACHE=tools_cache(tools))
    assert result.code == 0, result
    assert (directory / "dist" / "bundle.js").is_file()


def sql(user: User, database: str, query: str) -> list[list[object]]:
    result = user("sql", database, query, "--json")
    assert result.code == 0, result
    return json.loads(result.out)[0]["rows"]


def published(tools: NodeTools, server: ServerProcess, where: Path, name: str) -> str:
    """The fixture project ``name`` published as database ``ts-<name>`` by an owner of its own."""
    owner = User(where / "owner", server.url)
    publish(owner, tools, f"ts-{name}", project(tools, name, where))
    return f"ts-{name}"


@pytest.fixture(scope="module")
def keynote_db(
    tools: NodeTools, shared_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> str:
    database = published(tools, shared_server, tmp_path_factory.mktemp("keynote"), "keynote")
    assert (
        User(tmp_path_factory.mktemp("seeder"), shared_server.url)("call", database, "seed", "3", "100").code
        == 0
    )
    return database


def test_a_typescript_module_is_bundled_published_and_called(keynote_db: str, alice: User):
    assert alice("call", keynote_db, "transfer", "0", "2", "40").code == 0
    failed = alice("call", keynote_db, "transfer", "1", "1", "5")
    assert "same_account" in assert_one_line_error(failed)
    assert sorted(sql(alice, keynote_db, "SELECT id, balance FROM accounts")) == [[0, 60], [1, 100], [2, 140]]
    described = json.loads(alice("describe", keynote_db, "--json").out)
    assert [reducer["source_name"] for reducer in v10_section(described, "Reducers")] == [
        "noop",
        "remind",
        "remind_later",
        "seed",
        "transfer",
    ]
    assert sql(alice, keynote_db, "SELECT program_kind FROM st_module") == [[1]]  # JS, as upstream records it


def test_publishing_needs_node_and_says_so(alice: User, db_name: str, tmp_path: Path, tools: NodeTools):
    directory = project(tools, "keynote", tmp_path)
    result = alice("publish", db_name, "-p", str(directory), PATH="/nonexistent")
    assert "needs npm" in assert_one_line_error(result)


def test_a_typescript_compile_error_stops_the_publish(
    alice: User, db_name: str, tmp_path: Path, tools: NodeTools
):
    directory = project(tools, "chat", tmp_path)
    index = directory / "src" / "index.ts"
    index.write_text(index.read_text().replace("validateName(name);", "validateName(42);"))
    result = alice("publish", db_name, "-p", str(directory), SPACETIME_TOOLS_CACHE=tools_cache(tools))
    assert "tsc --noEmit" in assert_one_line_error(result)
    assert "Argument of type 'number'" in result.err


@pytest.fixture(scope="module")
def hostile_db(
    tools: NodeTools, shared_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> str:
    return published(tools, shared_server, tmp_path_factory.mktemp("hostile"), "hostile")


@pytest.mark.parametrize(
    ("reducer", "failure"),
    [
        ("spin", "budget"),
        ("hoard", "ran out of memory (its V8 heap is limited to 192 MiB)"),
        ("bad_syscall", "RangeError: row length 1048576 is past the end of its buffer (4 bytes)"),
        ("garbage_row", "BSATN_DECODE_ERROR"),
    ],
)
def test_a_hostile_reducer_fails_alone(
    hostile_db: str, keynote_db: str, alice: User, reducer: str, failure: str
):
    failed = alice("call", hostile_db, reducer)
    assert failure in assert_one_line_error(failed)
    # its writes were rolled back, the database serves on, and so does its neighbour
    assert alice("call", hostile_db, "write", f"after {reducer}").code == 0
    notes = [row[0] for row in sql(alice, hostile_db, "SELECT text FROM note")]
    assert f"after {reducer}" in notes and f"{reducer} was here" not in notes
    assert alice("call", keynote_db, "noop").code == 0


def test_the_official_typescript_sdk_chats_with_a_typescript_module(
    tools: NodeTools, shared_server: ServerProcess, alice: User, tmp_path: Path
):
    """The SDK scenario of tests/client/test_typescript_sdk.py, against upstream's chat tutorial module, with
    bindings generated from the running database, and a Python SDK client watching."""
    from tests.client.test_typescript_sdk import (
        MESSAGES,
        PythonWatcher,
        assert_sender_chatted,
        bundle_scenario,
        run_chat_scenario,
    )

    database = "ts-chat"
    publish(alice, tools, database, project(tools, "chat", tmp_path))
    work = tmp_path / "client"
    generated = alice("generate", "-l", "typescript", "-o", str(work / "module_bindings"), database)
    assert generated.code == 0, generated
    bundle = bundle_scenario(tools, work, "chat_scenario")
    python_watcher = PythonWatcher(shared_server.url, database)  # the Python SDK in the same chat
    try:
        sender_events, watcher_events = run_chat_scenario(
            tools, bundle, shared_server.url, database, lambda: python_watcher.applied.wait(30)
        )
        python_watcher.saw_the_conversation()
    finally:
        python_watcher.conn.disconnect()
    identity = assert_sender_chatted(sender_events, "Names must not be empty")
    watched = [e for e in watcher_events if e["event"] == "message"]
    assert [(m["text"], m["sender"], m["senderName"]) for m in watched] == [
        (text, identity, "ts-alice") for text in MESSAGES
    ]
    logs = alice("logs", database)
    assert f"User {identity}: {MESSAGES[0]}" in logs.out


def test_a_typescript_module_with_procedures_views_and_rls(
    alice: User, bob: User, db_name: str, tmp_path: Path, tools: NodeTools
):
    publish(alice, tools, db_name, project(tools, "features", tmp_path))
    assert alice("call", db_name, "join", "ann", "1").code == 0
    assert bob("call", db_name, "join", "bob", "2").code == 0
    # a procedure's return value comes back to its caller; one with a transaction of its own commits it
    added = alice("call", db_name, "add_two_numbers", "2", "40")
    assert (added.code, added.out.strip()) == (0, "42")
    levelled = alice("call", db_name, "level_up", "ann")
    assert (levelled.code, levelled.out.strip()) == (0, "2")
    assert sorted(sql(alice, db_name, "SELECT name, level FROM players")) == [["ann", 2], ["bob", 2]]
    assert sql(bob, db_name, "SELECT name, level FROM players") == [["bob", 2]]  # the module's RLS filter
    # a per-caller view and an anonymous one, read through SQL as a client would
    assert [row[2:] for row in sql(alice, db_name, "SELECT * FROM my_player")] == [["ann", 2]]
    assert [row[2:] for row in sql(bob, db_name, "SELECT * FROM my_player")] == [["bob", 2]]
    assert sorted(sql(bob, db_name, "SELECT * FROM players_at_level_two")) == [["ann", 2], ["bob", 2]]
    # the caller's token claims (ctx.senderAuth) come through get_jwt_payload
    assert alice("call", db_name, "whoami").code == 0
    logged = [line for line in alice("logs", db_name).out.splitlines() if "claims of" in line]
    assert len(logged) == 1 and "subject none" not in logged[0] and "issuer none" not in logged[0], logged


def test_a_typescript_module_is_updated(alice: User, db_name: str, tmp_path: Path, tools: NodeTools):
    """The new version loads beside the running one (in the worker's second prepared isolate; reusing them is
    tests/host/foreign/test_js_engine.py's business) and the data stays."""
    directory = project(tools, "keynote", tmp_path)
    publish(alice, tools, db_name, directory)
    assert alice("call", db_name, "seed", "2", "5").code == 0
    index = directory / "src" / "index.ts"
    index.write_text(index.read_text() + "\nexport const version_2 = spacetimedb.reducer(_ctx => {});\n")
    # from inside the project, without -p
    result = alice("publish", db_name, "-y", cwd=directory, SPACETIME_TOOLS_CACHE=tools_cache(tools))
    assert result.code == 0, result
    assert alice("call", db_name, "version_2").code == 0
    assert sorted(sql(alice, db_name, "SELECT id, balance FROM accounts")) == [[0, 5], [1, 5]]


def test_a_python_database_is_replaced_by_a_typescript_module(
    alice: User, db_name: str, tmp_path: Path, tools: NodeTools
):
    """With -c the database starts afresh, in a worker that prepares V8 for its new module."""
    from .conftest import NOTES

    alice.publish(db_name, NOTES)
    directory = project(tools, "keynote", tmp_path)
    result = alice(
        "publish", db_name, "-p", str(directory), "-c", "-y", SPACETIME_TOOLS_CACHE=tools_cache(tools)
    )
    assert result.code == 0, result
    assert sql(alice, db_name, "SELECT program_kind FROM st_module") == [[1]]
    assert alice("call", db_name, "seed", "1", "7").code == 0


def test_a_scheduled_reducer_of_a_typescript_module_runs(keynote_db: str, alice: User):
    assert alice("call", keynote_db, "remind_later", "tea", "50").code == 0
    deadline = time.monotonic() + 20
    while sql(alice, keynote_db, "SELECT text FROM reminded") != [["tea"]]:
        assert time.monotonic() < deadline, "the scheduled reducer did not run"
        time.sleep(0.1)


ROLLDOWN_CONFIG = """
export default {
  input: './src/index.ts',
  external: [/spacetime:sys.*/],
  platform: 'browser',
  resolve: { conditionNames: ['production', 'import', 'default'], mainFields: ['exports', 'module', 'main'] },
  define: { 'process.env.NODE_ENV': '"production"' },
  treeshake: { moduleSideEffects: true },
  output: { file: 'dist/bundle.js', format: 'esm', exports: 'named' },
};
"""


def test_a_rolldown_bundle_published_with_bin_path(alice: User, db_name: str, tmp_path: Path):
    """Bundled by rolldown with the options upstream's `spacetime build` gives it, then `--bin-path`."""
    rolldown_tools = node_tools(
        packages=(f"spacetimedb@{SDK_VERSION}", "rolldown@1.3.4"), purpose="the rolldown bundle test"
    )
    directory = project(rolldown_tools, "keynote", tmp_path)
    (directory / "rolldown.config.mjs").write_text(ROLLDOWN_CONFIG)
    built = subprocess.run(
        [rolldown_tools.bin("rolldown"), "-c", "rolldown.config.mjs"],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert built.returncode == 0, built.stderr
    result = alice("publish", db_name, "--bin-path", str(directory / "dist" / "bundle.js"))
    assert result.code == 0, result
    assert alice("call", db_name, "seed", "2", "10").code == 0
    assert alice("call", db_name, "transfer", "0", "1", "3").code == 0
    assert sorted(sql(alice, db_name, "SELECT id, balance FROM accounts")) == [[0, 7], [1, 13]]
