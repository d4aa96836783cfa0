"""Views end to end: a real server runs ``views_module.py``; clients of our Python SDK and of the official
TypeScript SDK subscribe to a per-caller view (``my_items``, over a private table) and to anonymous views, call
reducers and see the deltas. Two callers never see each other's rows."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from spacetimedb.client import DbConnection

from .helpers import ROOT, publish, write_bindings
from .node_tools import node_tools
from .test_typescript_sdk import _run, bundle_scenario

VIEWS_MODULE = ROOT / "tests" / "host" / "views_module.py"
QUERIES = [
    "SELECT * FROM my_items",
    "SELECT * FROM totals",
    "SELECT * FROM expensive_items",
    "SELECT * FROM my_cheapest",
]
pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]


def _wait(condition: Callable[[], bool], conn: DbConnection | None = None, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for a condition"
        if conn is not None:
            conn.frame_tick()
        time.sleep(0.01)


class _Shopper:
    """An untyped Python SDK client subscribed to the views, recording each view callback."""

    def __init__(self, url: str) -> None:
        self.events: list[tuple[str, str, Any]] = []
        self.applied = threading.Event()
        self.conn = DbConnection.builder().with_uri(url).with_database_name("shop").build()
        for view in ("my_items", "totals", "expensive_items", "my_cheapest"):
            handle = self.conn.db.table(view)
            handle.on_insert(lambda ctx, row, v=view: self.events.append((v, "insert", row)))
            handle.on_delete(lambda ctx, row, v=view: self.events.append((v, "delete", row)))
        # a view with a primary key (upstream's view primary keys): a changed row is an update
        self.conn.db.table("my_cheapest").on_update(
            lambda ctx, old, new: self.events.append(("my_cheapest", "update", (old, new)))
        )
        self.conn.subscription_builder().on_applied(lambda ctx: self.applied.set()).subscribe(QUERIES)
        _wait(self.applied.is_set, self.conn)

    def names(self, view: str = "my_items") -> list[str]:
        return sorted(row.name for row in self.conn.db.table(view).iter())

    def totals(self) -> tuple[int, int]:
        (row,) = self.conn.db.table("totals").iter()
        return row.count, row.total

    def call(self, reducer: str, *args: Any) -> None:
        future = self.conn.reducers.call(reducer, *args)
        _wait(future.done, self.conn)
        assert future.result().committed


def test_python_sdk_sees_its_own_view_rows_live(server) -> None:
    publish(server.url, "shop", VIEWS_MODULE)
    alice, bob = _Shopper(server.url), _Shopper(server.url)
    try:
        assert alice.names() == [] and alice.totals() == (0, 0)
        alice.call("add_item", "apple", 5)
        bob.call("add_item", "bread", 150)
        _wait(lambda: alice.totals() == (2, 155), alice.conn)
        _wait(lambda: bob.totals() == (2, 155), bob.conn)
        assert alice.names() == ["apple"] and bob.names() == ["bread"]  # never each other's
        assert alice.names("expensive_items") == bob.names("expensive_items") == ["bread"]
        (apple,) = alice.conn.db.table("my_items").iter()
        alice.call("set_price", apple.id, 500)
        _wait(lambda: alice.names("expensive_items") == ["apple", "bread"], alice.conn)
        _wait(lambda: bob.names("expensive_items") == ["apple", "bread"], bob.conn)
        assert ("my_items", "delete", apple) in alice.events
        _wait(
            lambda: [e[1] for e in alice.events if e[0] == "my_cheapest"] == ["insert", "update"], alice.conn
        )
        (_, _, (old, new)) = [e for e in alice.events if e[0] == "my_cheapest"][1]
        assert (old.id, old.price, new.id, new.price) == (apple.id, 5, apple.id, 500)
        assert [r.price for r in alice.conn.db.table("my_items").iter()] == [500]
        assert all(row.owner == bob.conn.identity for v, _, row in bob.events if v == "my_items")
        assert all(row.owner == alice.conn.identity for v, _, row in alice.events if v == "my_items")
        # one-off queries and /sql read the caller's result too; /schema declares the views
        pending = bob.conn.one_off_query("SELECT * FROM my_items WHERE price > 100")
        _wait(pending.done, bob.conn)
        assert [row.name for row in pending.result()["my_items"]] == ["bread"]
        assert _http(server.url, "/sql", alice.conn.token, b"SELECT name, price FROM my_items")[0][
            "rows"
        ] == [["apple", 500]]
        schema = _http(server.url, "/schema?version=9", alice.conn.token)
        views = [e["View"]["name"] for e in schema["misc_exports"] if "View" in e]
        assert {"my_items", "totals", "expensive_items"} <= set(views)
    finally:
        alice.conn.disconnect()
        bob.conn.disconnect()


def _http(url: str, route: str, token: str | None, body: bytes | None = None) -> Any:
    request = urllib.request.Request(
        f"{url}/v1/database/shop{route}",
        data=body,
        method="POST" if body is not None else "GET",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.mark.node
def test_typescript_sdk_subscribes_to_views(server, tmp_path: Path) -> None:
    tools = node_tools()
    publish(server.url, "shop", VIEWS_MODULE)
    write_bindings(VIEWS_MODULE, "typescript", tmp_path / "module_bindings")
    bundle = bundle_scenario(tools, tmp_path, "views_scenario")
    bob = _Shopper(server.url)  # a Python client shops alongside the TypeScript ones
    try:
        output = _run([tools.node, *tools.node_flags, bundle.name, server.url, "shop"], tmp_path)
        results = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
        final = {r["who"]: r for r in results if r.get("event") == "final"}
        assert set(final) == {"alice", "carol"}, output
        assert final["alice"]["mine"] == ["ts-apple"] and final["carol"]["mine"] == ["ts-cherry"]
        assert final["alice"]["totals"] == final["carol"]["totals"] == [2, 3 + 300]
        # my_cheapest has a primary key: the SDK reports alice's price change as one update, carol sees none
        updates = [(r["who"], r["old"], r["new"]) for r in results if r.get("event") == "update"]
        assert updates == [("alice", 2, 3)], output
        assert final["alice"]["expensive"] == final["carol"]["expensive"] == ["ts-cherry"]
        deltas = [r for r in results if r.get("event") in ("insert", "delete") and r["view"] == "myItems"]
        assert {(d["who"], d["event"], d["name"]) for d in deltas} >= {
            ("alice", "insert", "ts-apple"),
            ("carol", "insert", "ts-cherry"),
        }
        assert all(d["owner"] == final[d["who"]]["identity"] for d in deltas)
        assert not [r for r in results if r.get("event") == "failure"], output
        assert results[-1] == {"event": "done", "failures": []}, output
        _wait(lambda: bob.totals() == (2, 303), bob.conn)
        assert bob.names() == []
    finally:
        bob.conn.disconnect()
