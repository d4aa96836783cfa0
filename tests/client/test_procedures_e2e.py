"""Procedures, event tables and the caller's claims end to end: a real server (with procedures' HTTP allowed to
loopback), a loopback HTTP site the procedures fetch from, our Python SDK, ``POST /call`` and ``spacetime call``."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from spacetimedb.client import DbConnection, ProcedureError
from tests.conftest import ServerProcess, start_server

from .helpers import ROOT, publish, write_bindings

MODULE = ROOT / "tests" / "host" / "procedures_module.py"
QUOTE = "the quieter you become, the more you are able to hear"

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]


class _Quotes(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = QUOTE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def site() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Quotes)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/quote"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def egress_server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path / "data", extra_args=["--procedure-http-allow", "127.0.0.1"])
    try:
        yield proc
    finally:
        proc.shut_down()


def post(url: str, body: Any) -> tuple[int, str]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def sql(url: str, database: str, query: str, token: str) -> list[list[Any]]:
    request = urllib.request.Request(
        f"{url}/v1/database/{database}/sql",
        data=query.encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())[0]["rows"]  # type: ignore[no-any-return]


def test_procedures_event_tables_and_claims_through_the_python_sdk(
    egress_server: ServerProcess, site: str
) -> None:
    url = egress_server.url
    publish(url, "procs", MODULE)
    quotes: list[str] = []
    damage: list[int] = []
    applied = threading.Event()
    conn = DbConnection.builder().with_uri(url).with_database_name("procs").build()
    conn.db.quote.on_insert(lambda ctx, row: quotes.append(row.text))
    conn.db.damage.on_insert(lambda ctx, row: damage.append(row.amount))
    conn.subscription_builder().on_applied(lambda ctx: applied.set()).subscribe(
        ["SELECT * FROM quote", "SELECT * FROM damage"]
    )
    conn.run_threaded()
    try:
        assert applied.wait(30)
        assert conn.call_procedure("add_two", 40, 2).result(30) == 42
        assert conn.call_procedure("fetch_quote", site).result(30) == QUOTE
        refused = conn.call_procedure("fetch_status", "http://10.0.0.1/", 1.0).result(30)
        assert refused == "error: the server does not allow requests to host `10.0.0.1`"
        with pytest.raises(ProcedureError, match="procedure failed on purpose"):
            conn.call_procedure("crash").result(30)
        conn.call_reducer("hit", conn.identity, 9).result(30)
        conn.call_reducer("record_caller").result(30)
        deadline_ok = threading.Event()
        for _ in range(300):
            if quotes == [QUOTE] and damage == [9]:
                deadline_ok.set()
                break
            threading.Event().wait(0.05)
        assert deadline_ok.is_set(), (quotes, damage)
        assert conn.db.damage.count() == 0  # event rows are never cached
        (credentials,) = conn.one_off_query("SELECT * FROM my_credentials").result(30)["my_credentials"]
        assert (credentials.issuer, credentials.has_jwt) == ("localhost", True)  # a view's ctx.sender_auth
        token = conn.token
    finally:
        conn.disconnect()
    rows = sql(url, "procs", "SELECT issuer, internal FROM caller", token)
    assert rows == [["localhost", False]]
    assert sql(url, "procs", "SELECT * FROM damage", token) == []


def test_procedures_over_http_and_the_cli(egress_server: ServerProcess, site: str, tmp_path: Path) -> None:
    url = egress_server.url
    publish(url, "procs-http", MODULE)
    base = f"{url}/v1/database/procs-http/call"
    assert post(f"{base}/add_two", [1, 2]) == (200, "3")
    assert post(f"{base}/add_two", {"lhs": 5, "rhs": 6}) == (200, "11")
    assert post(f"{base}/fetch_quote", [site]) == (200, json.dumps(QUOTE))
    status, text = post(f"{base}/crash", [])
    assert status == 530 and "procedure failed on purpose" in text
    status, text = post(f"{base}/add_two", ["x", 1])
    assert status == 400 and "invalid arguments for procedure `add_two`" in text
    status, text = post(f"{base}/nothing_here", [])
    assert status == 404
    env = {"SPACETIME_CONFIG_DIR": str(tmp_path / "cli"), "HOME": str(tmp_path / "home"), "NO_COLOR": "1"}
    import os

    cli = subprocess.run(
        [sys.executable, "-m", "spacetimedb.cli.main", "call", "procs-http", "add_two", "1", "2", "-s", url],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.strip() == "3"
    cli = subprocess.run(
        [sys.executable, "-m", "spacetimedb.cli.main", "describe", "procs-http", "-s", url],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )
    assert "Procedures" in cli.stdout and "add_two(lhs: U32, rhs: U32) -> U64" in cli.stdout, cli.stdout
    # bindings made from the running database mark the event table, as those made from the module file do
    cli = subprocess.run(
        [sys.executable, "-m", "spacetimedb.cli.main", "generate", "procs-http", "-l", "typescript"]
        + ["-o", str(tmp_path / "bindings"), "-s", url],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )
    assert cli.returncode == 0, cli.stderr
    assert "event: true," in (tmp_path / "bindings" / "index.ts").read_text()
    # ... which SpacetimeDB's own CLI never sees: the plain schema has no such key
    with urllib.request.urlopen(f"{url}/v1/database/procs-http/schema?version=9", timeout=30) as response:
        assert "is_event" not in response.read().decode()


def test_event_rows_are_gone_after_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = start_server(data)
    try:
        publish(proc.url, "events", MODULE)
        target = {"__identity__": "0x" + "c2" + "00" * 31}
        assert post(f"{proc.url}/v1/database/events/call/hit", [target, 3])[0] == 200
        assert post(f"{proc.url}/v1/database/events/call/add_two", [1, 1]) == (200, "2")
    finally:
        proc.shut_down()
    proc = start_server(data)
    try:
        identity = json.loads(
            urllib.request.urlopen(urllib.request.Request(f"{proc.url}/v1/identity", method="POST")).read()
        )
        assert sql(proc.url, "events", "SELECT * FROM damage", identity["token"]) == []
        assert post(f"{proc.url}/v1/database/events/call/add_two", [2, 2]) == (200, "4")
    finally:
        proc.shut_down()


@pytest.mark.node
def test_the_official_typescript_sdk_calls_procedures_and_gets_event_rows(
    egress_server: ServerProcess, site: str, tmp_path: Path
) -> None:
    from .node_tools import node_tools
    from .test_typescript_sdk import _events, bundle_scenario

    tools = node_tools()
    publish(egress_server.url, "procs-ts", MODULE)
    write_bindings(MODULE, "typescript", tmp_path / "module_bindings")
    bundle = bundle_scenario(tools, tmp_path, "procedures_scenario")
    node = [tools.node, *tools.node_flags, bundle.name, egress_server.url, "procs-ts", site]
    result = subprocess.run(node, cwd=tmp_path, capture_output=True, text=True, timeout=90)
    events = {e["event"]: e for e in _events(result.stdout)}
    context = f"\n{result.stdout}\n{result.stderr[-3000:]}"
    assert result.returncode == 0 and events["done"]["failures"] == [], context
    assert events["add_two"]["value"] == "42", context  # a u64 arrives as a bigint
    assert events["fetch_quote"]["value"] == QUOTE, context
    assert "procedure failed on purpose" in events["procedure_error"]["message"], context
    assert events["rows"] == {
        "event": "rows",
        "quotes": [QUOTE],
        "damage": [9],
        "damageCached": 0,
        "quotesCached": 1,
    }, context


def test_a_procedure_stuck_in_c_code_gets_its_worker_killed_and_the_database_comes_back(
    tmp_path: Path,
) -> None:
    proc = start_server(tmp_path / "data", extra_args=["--reducer-budget", "0.5", "--hard-grace", "0.5"])
    try:
        publish(proc.url, "stuck", MODULE)
        publish(proc.url, "neighbour", MODULE)
        status, text = post(f"{proc.url}/v1/database/stuck/call/stuck_in_c", [30])
        assert status == 503 and "stuck_in_c" in text, (status, text)
        assert post(f"{proc.url}/v1/database/neighbour/call/add_two", [1, 2]) == (200, "3")
        assert post(f"{proc.url}/v1/database/stuck/call/add_two", [2, 3]) == (
            200,
            "5",
        )  # relaunched from disk
    finally:
        proc.shut_down()
