"""Views in the host: SQL over views, subscriptions kept live per caller, failures, read-only ``ctx.db``.

A database runs ``views_module.py`` in the test process; subscriptions are made on the host thread as the
server's client hub makes them, and every committed transaction's ``TransactionUpdates`` is recorded.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from spacetimedb.datastore import ST_VIEW_ID
from spacetimedb.host.database import Database, DatabaseOptions, LaunchError
from spacetimedb.host.module_host import HostOptions, TransactionEvent
from spacetimedb.host.sql_runner import one_off_rows, run_sql
from spacetimedb.sats import Identity, codec
from spacetimedb.subscription import SubscriptionError, TableRows

from .helpers import DB, OWNER, LocalDatabases, call, ident

VIEWS = (Path(__file__).parent / "views_module.py").read_bytes()
ALICE, BOB = ident(1), ident(2)


class Harness:
    """A database with the views module, its clients' subscriptions and what each commit sent them."""

    def __init__(self, databases: LocalDatabases) -> None:
        databases.publish(DB, OWNER, VIEWS)
        self.database: Database = databases.database(DB)
        self.host = self.database.host
        self.events: list[TransactionEvent] = []
        self.host.add_transaction_listener(self.events.append)

    def subscribe(self, client: int, query_set: int, queries: list[str], who: Identity) -> list[TableRows]:
        host = self.host

        def work() -> list[TableRows]:
            with host.db.read_tx() as tx:
                return host.views.subscribe_set(
                    host.subscriptions, client, query_set, queries, who, False, tx
                )

        return self.database.on_host_thread(work)  # type: ignore[no-any-return]

    def unsubscribe(self, client: int, query_set: int) -> list[TableRows] | None:
        host = self.host

        def work() -> list[TableRows] | None:
            with host.db.read_tx() as tx:
                return host.views.unsubscribe_set(host.subscriptions, client, query_set, tx)

        return self.database.on_host_thread(work)  # type: ignore[no-any-return]

    def sql(self, text: str, who: Identity) -> Any:
        body, _ = self.database.on_host_thread(lambda: run_sql(self.host, text, who, who == OWNER))
        return body

    def deltas(self, client: int) -> list[tuple[int, str, list[tuple], list[tuple]]]:
        """(query set, table, inserted rows, deleted rows) the client was sent, decoded, since the last call."""
        out = _peek(self, client)
        self.events.clear()
        return out

    def errors(self, client: int) -> list[tuple[int, str]]:
        return [e for event in self.events for e in event.updates.errors.get(client, [])]


@pytest.fixture
def harness(tmp_path):
    databases = LocalDatabases(None, DatabaseOptions(host=HostOptions(reducer_budget_seconds=0.3)))
    yield Harness(databases)
    databases.shutdown()


def _decoded(rows: list[TableRows]) -> dict[str, list[tuple]]:
    return {t.table_name: sorted(codec(t.row_type).decode(r) for r in t.rows) for t in rows}


def test_per_caller_view_is_live_and_private_to_each_caller(harness):
    assert call(harness.host, "add_item", "apple", 5, sender=ALICE).ok
    initial_alice = harness.subscribe(1, 0, ["SELECT * FROM my_items"], ALICE)
    initial_bob = harness.subscribe(2, 0, ["SELECT * FROM my_items"], BOB)
    assert [r[2] for r in _decoded(initial_alice)["my_items"]] == ["apple"]
    assert _decoded(initial_bob) == {"my_items": []}

    assert call(harness.host, "add_item", "bread", 7, sender=BOB).ok
    bob_sees = harness.deltas(2)
    assert [(qs, table, [r[2] for r in ins], dels) for qs, table, ins, dels in bob_sees] == [
        (0, "my_items", ["bread"], [])
    ]
    assert harness.deltas(1) == []  # alice's result did not change: she hears nothing

    assert call(harness.host, "set_price", 1, 9, sender=ALICE).ok
    (update,) = harness.deltas(1)
    assert [r[3] for r in update[2]] == [9] and [r[3] for r in update[3]] == [
        5
    ]  # a delete + insert of the row
    assert all(row[1] == ALICE for _, _, ins, dels in [update] for row in ins + dels)


def test_a_views_rows_go_by_the_table_id_of_its_st_view_row(harness):
    """Upstream gives each view a backing table, named in st_view; ours is an id no table takes, and the one
    subscribers' updates carry."""
    with harness.host.db.read_tx() as tx:
        ids = {row[1]: row[2] for row in tx.scan(ST_VIEW_ID)}
        table_ids = {schema.table_id for schema in tx.schemas()}
        assert all(tx.table_id(name) is None for name in ids)
    assert set(ids) == set(harness.host.loaded.module_def.views) and not table_ids & set(ids.values())
    (rows,) = harness.subscribe(1, 0, ["SELECT * FROM my_items"], ALICE)
    assert (rows.table_name, rows.table_id) == ("my_items", ids["my_items"])


def test_anonymous_view_and_single_row_view_deltas(harness):
    harness.subscribe(1, 0, ["SELECT * FROM expensive_items", "SELECT * FROM totals"], ALICE)
    harness.subscribe(2, 5, ["SELECT * FROM totals"], BOB)
    assert call(harness.host, "add_item", "cheap", 10, sender=ALICE).ok
    assert harness.events[0].updates.updates[1] == [
        (0, harness.events[0].updates.updates[2][0][1])
    ]  # one shared delta
    assert harness.deltas(1) == [(0, "totals", [(1, 10)], [(0, 0)])]
    assert call(harness.host, "add_item", "gold", 500, sender=BOB).ok
    changes = {table: (ins, dels) for _, table, ins, dels in harness.deltas(1)}
    assert [r[2] for r in changes["expensive_items"][0]] == ["gold"]
    assert changes["totals"] == ([(2, 510)], [(1, 10)])


def test_where_clause_filters_a_view_subscription(harness):
    rows = harness.subscribe(1, 0, ["SELECT * FROM my_items WHERE price > 50"], ALICE)
    assert _decoded(rows) == {"my_items": []}
    assert call(harness.host, "add_item", "pen", 3, sender=ALICE).ok
    assert harness.deltas(1) == []
    assert call(harness.host, "add_item", "watch", 300, sender=ALICE).ok
    assert [(t, [r[2] for r in ins]) for _, t, ins, _ in harness.deltas(1)] == [("my_items", ["watch"])]


def test_view_and_table_queries_in_one_query_set_and_unsubscribe(harness):
    assert call(harness.host, "set_switch", False).ok
    rows = harness.subscribe(1, 3, ["SELECT * FROM my_items", "SELECT * FROM switch"], ALICE)
    assert set(_decoded(rows)) == {"my_items", "switch"}
    with pytest.raises(SubscriptionError, match="already subscribed"):
        harness.subscribe(1, 3, ["SELECT * FROM totals"], ALICE)
    assert call(harness.host, "add_item", "cup", 2, sender=ALICE).ok
    assert [t for _, t, _, _ in harness.deltas(1)] == ["my_items"]
    dropped = harness.unsubscribe(1, 3)
    assert {t.table_name: len(t.rows) for t in dropped} == {"my_items": 1, "switch": 1}
    assert not harness.host.views.active
    assert call(harness.host, "add_item", "jar", 2, sender=ALICE).ok
    assert harness.deltas(1) == []


def test_a_view_that_raises_fails_its_subscribers_not_the_transaction(harness):
    harness.subscribe(1, 0, ["SELECT * FROM fragile"], ALICE)
    harness.subscribe(1, 1, ["SELECT * FROM totals"], ALICE)
    outcome = call(harness.host, "set_switch", True)
    assert outcome.ok  # the transaction that broke the view committed
    assert harness.sql("SELECT * FROM switch", OWNER).count("true") == 1
    (error,) = harness.errors(1)
    assert error[0] == 0 and "the fragile view broke" in error[1] and "fragile" in error[1]
    assert "the fragile view broke" in "\n".join(harness.database.module_log.tail(20))
    # the failed set is gone, the other one lives on
    assert call(harness.host, "add_item", "x", 1, sender=ALICE).ok
    assert [qs for qs, *_ in harness.deltas(1)] == [1]
    with pytest.raises(SubscriptionError, match="the fragile view broke"):
        harness.subscribe(2, 0, ["SELECT * FROM fragile"], BOB)


def test_a_view_runs_under_the_time_budget(harness):
    harness.subscribe(1, 0, ["SELECT * FROM stubborn"], ALICE)
    assert call(
        harness.host, "set_switch", True
    ).ok  # the view it made spin does not hold the transaction back
    (error,) = harness.errors(1)
    assert "view `stubborn` failed: ran out of its time budget (0.3s)" in error[1]
    with pytest.raises(SubscriptionError, match="ran out of its time budget"):
        harness.subscribe(2, 0, ["SELECT * FROM stubborn"], BOB)
    assert call(harness.host, "add_item", "after", 1, sender=ALICE).ok  # the host is fine


def test_a_view_cannot_write(harness):
    with pytest.raises(SubscriptionError, match=r"ctx\.db is read-only in a view"):
        harness.subscribe(1, 0, ["SELECT * FROM sneaky_writer"], ALICE)
    assert harness.sql("SELECT * FROM item", OWNER).count("stolen") == 0


def test_sql_and_one_off_queries_read_views_per_caller(harness):
    assert call(harness.host, "add_item", "apple", 5, sender=ALICE).ok
    assert call(harness.host, "add_item", "bread", 150, sender=BOB).ok
    assert "apple" in harness.sql("SELECT * FROM my_items", ALICE)
    assert "bread" not in harness.sql("SELECT * FROM my_items", ALICE)
    assert "bread" in harness.sql("SELECT name FROM my_items WHERE price > 100", BOB)
    with pytest.raises(Exception, match="no such table"):  # the table behind the view is private
        harness.sql("SELECT * FROM item", BOB)
    with pytest.raises(Exception, match="`my_items` is a view: views are read-only"):
        harness.sql("DELETE FROM my_items", OWNER)
    tables = harness.database.on_host_thread(
        lambda: one_off_rows(harness.host, "SELECT * FROM my_cheapest", BOB, False)
    )
    assert [t.table_name for t in tables] == ["my_cheapest"]
    assert [codec(tables[0].row_type).decode(r)[2] for r in tables[0].rows] == ["bread"]


def test_delta_matches_recomputation_over_random_calls(harness):
    """Whatever the calls, the initial rows plus every delta equal the view's result computed afresh."""
    import random

    rng = random.Random(15)
    people = [ident(10 + i) for i in range(3)]
    for n, who in enumerate(people):
        harness.subscribe(
            n, 0, ["SELECT * FROM my_items", "SELECT * FROM expensive_items WHERE price < 400"], who
        )
    held = [Counter() for _ in people]
    ids: list[int] = []
    for step in range(60):
        who = rng.randrange(len(people))
        action = rng.random()
        if action < 0.5 or not ids:
            assert call(harness.host, "add_item", f"i{step}", rng.randrange(0, 600), sender=people[who]).ok
            ids.append(len(ids) + 1)
        elif action < 0.8:
            call(harness.host, "set_price", rng.choice(ids), rng.randrange(0, 600), sender=people[who])
        else:
            call(harness.host, "remove_item", rng.choice(ids), sender=people[who])
        for n in range(len(people)):
            for _, table, ins, dels in _peek(harness, n):
                held[n].update((table, r) for r in ins)
                held[n].subtract((table, r) for r in dels)
        harness.events.clear()
    for n, who in enumerate(people):
        fresh = Counter()
        for text, table in (
            ("SELECT * FROM my_items", "my_items"),
            ("SELECT * FROM expensive_items WHERE price < 400", "expensive_items"),
        ):
            tables = harness.database.on_host_thread(
                lambda t=text, w=who: one_off_rows(harness.host, t, w, False)
            )
            fresh.update((table, codec(tables[0].row_type).decode(r)) for r in tables[0].rows)
        assert +held[n] == fresh and all(v >= 0 for v in held[n].values())


def _peek(harness: Harness, client: int) -> list[tuple[int, str, list[tuple], list[tuple]]]:
    out = []
    for event in harness.events:
        for query_set, delta in event.updates.updates.get(client, []):
            decode = codec(delta.row_type).decode
            out.append(
                (
                    query_set,
                    delta.table_name,
                    [decode(r) for r in delta.inserts],
                    [decode(r) for r in delta.deletes],
                )
            )
    return out


def test_a_change_reruns_only_the_views_that_read_its_keys(harness, monkeypatch):
    """``my_items`` reads one key of ``item.owner``: a change to alice's items runs her view, not bob's."""
    for n, who in enumerate((ALICE, BOB)):
        assert call(harness.host, "add_item", f"thing{n}", 1, sender=who).ok
        harness.subscribe(n, 0, ["SELECT * FROM my_items"], who)
    harness.subscribe(2, 0, ["SELECT * FROM totals"], BOB)  # reads the whole table: runs on every change
    runs: list[tuple[str, Identity]] = []
    real = harness.host.views.run_view
    monkeypatch.setattr(
        harness.host.views,
        "run_view",
        lambda view, tx, who: (runs.append((view.name, who)), real(view, tx, who))[1],
    )
    assert call(harness.host, "set_price", 1, 40, sender=ALICE).ok
    assert sorted(name for name, _ in runs) == ["my_items", "totals"]
    assert ("my_items", ALICE) in runs
    assert [t for _, t, _, _ in harness.deltas(0)] == ["my_items"] and harness.deltas(1) == []


def test_a_view_joined_with_a_table(harness):
    assert call(harness.host, "set_switch", False).ok  # switch row id 1
    assert call(harness.host, "add_item", "one", 1, sender=ALICE).ok
    assert call(harness.host, "add_item", "two", 2, sender=ALICE).ok
    query = "SELECT my_items.* FROM my_items JOIN switch ON my_items.price = switch.id"
    assert [r[2] for r in _decoded(harness.subscribe(1, 0, [query], ALICE))["my_items"]] == ["one"]
    assert '"one"' in harness.sql(query, ALICE) and '"two"' not in harness.sql(query, ALICE)
    assert call(harness.host, "set_price", 2, 1, sender=ALICE).ok
    assert [(t, [r[2] for r in ins]) for _, t, ins, _ in harness.deltas(1)] == [("my_items", ["two"])]


def test_subscribers_get_the_new_result_after_a_module_update(harness):
    assert call(harness.host, "add_item", "apple", 5, sender=ALICE).ok
    harness.subscribe(1, 0, ["SELECT * FROM my_items"], ALICE)
    harness.subscribe(1, 1, ["SELECT * FROM fragile"], ALICE)
    updated = VIEWS.replace(b"return list(ctx.db.item.owner.filter(ctx.sender))", b"return []")
    updated = updated.replace(b"def fragile(", b"def fragile_renamed(")
    harness.database.on_host_thread(lambda: harness.database.update(updated))
    assert call(
        harness.host, "add_item", "pear", 6, sender=BOB
    ).ok  # any commit refreshes results of the old module
    (error,) = harness.errors(1)  # the fragile view is gone
    assert error[0] == 1 and "subscribe again" in error[1]
    (change,) = [d for d in harness.deltas(1) if d[1] == "my_items"]
    assert [r[2] for r in change[3]] == ["apple"] and change[2] == []


def _count_runs(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Identity]]:
    """The (view, caller) of each view run from now on."""
    runs: list[tuple[str, Identity]] = []
    real = harness.host.views.run_view

    def counted(view: Any, tx: Any, who: Identity, runtime: Any = None) -> Any:
        runs.append((view.name, who))
        return real(view, tx, who, runtime)

    monkeypatch.setattr(harness.host.views, "run_view", counted)
    return runs


def test_a_query_keeps_the_view_result_current_without_running_it_again(harness, monkeypatch):
    """As upstream's test_view_materialization: a view a query read runs again at the commits that change
    what it read (not at later queries, not at other commits)."""
    assert call(harness.host, "add_item", "apple", 5, sender=ALICE).ok
    runs = _count_runs(harness, monkeypatch)
    assert "apple" in harness.sql("SELECT * FROM my_items", ALICE)
    assert "apple" in harness.sql("SELECT name FROM my_items WHERE price = 5", ALICE)
    assert runs == [("my_items", ALICE)]
    assert call(harness.host, "add_item", "bread", 7, sender=BOB).ok  # not a key alice's view read
    assert runs == [("my_items", ALICE)]
    assert call(harness.host, "add_item", "pear", 6, sender=ALICE).ok  # runs at the commit
    assert runs == [("my_items", ALICE)] * 2
    assert "pear" in harness.sql("SELECT * FROM my_items", ALICE)
    assert runs == [("my_items", ALICE)] * 2


def test_a_kept_view_result_nobody_reads_expires(harness, monkeypatch):
    runs = _count_runs(harness, monkeypatch)
    harness.sql("SELECT * FROM my_items", ALICE)
    monkeypatch.setattr("spacetimedb.host.views.STORED_EXPIRY_SECONDS", 0.0)
    monkeypatch.setattr("spacetimedb.host.views.STORED_SWEEP_SECONDS", 0.0)
    assert call(harness.host, "add_item", "bread", 7, sender=BOB).ok  # the sweep drops alice's result
    assert harness.host.views.active is False
    assert call(harness.host, "add_item", "apple", 5, sender=ALICE).ok  # nothing kept: nothing runs
    assert runs == [("my_items", ALICE)]
    assert "apple" in harness.sql("SELECT * FROM my_items", ALICE)
    assert runs == [("my_items", ALICE)] * 2


def test_an_update_whose_view_fails_for_a_kept_result_is_refused(harness):
    """As upstream's test_recovery_from_trapped_views_auto_migration: the update is refused, the database keeps
    its module and data, and a later update whose view works goes through."""
    assert call(harness.host, "add_item", "apple", 5, sender=ALICE).ok
    assert "apple" in harness.sql("SELECT * FROM my_items", ALICE)
    body = b"return list(ctx.db.item.owner.filter(ctx.sender))"
    trapped = VIEWS.replace(body, b'raise RuntimeError("This view is trapped")')
    with pytest.raises(LaunchError, match="view `my_items` failed: This view is trapped"):
        harness.database.on_host_thread(lambda: harness.database.update(trapped))
    assert "apple" in harness.sql("SELECT * FROM my_items", ALICE)
    harness.database.on_host_thread(lambda: harness.database.update(VIEWS.replace(body, b"return []")))
    assert "apple" not in harness.sql("SELECT * FROM my_items", ALICE)


def test_kept_view_results_are_bounded_dropping_the_least_recently_read(harness, monkeypatch):
    monkeypatch.setattr("spacetimedb.host.views.STORED_MAX", 2)
    runs = _count_runs(harness, monkeypatch)
    carol = ident(3)
    for who in (ALICE, BOB, ALICE, carol):  # alice read again: bob's is the least recently read
        harness.sql("SELECT * FROM my_items", who)
    assert runs == [("my_items", ALICE), ("my_items", BOB), ("my_items", carol)]
    harness.sql("SELECT * FROM my_items", ALICE)
    harness.sql("SELECT * FROM my_items", BOB)
    assert runs[3:] == [("my_items", BOB)]


def test_an_update_runs_a_kept_results_view_once(harness, monkeypatch):
    """The update checks the kept result with the new module; its commit does not run the view again."""
    harness.sql("SELECT * FROM my_items", ALICE)
    runs = _count_runs(harness, monkeypatch)
    updated = VIEWS.replace(b"return list(ctx.db.item.owner.filter(ctx.sender))", b"return []")
    harness.database.on_host_thread(lambda: harness.database.update(updated))
    assert runs == [("my_items", ALICE)]
    assert call(harness.host, "add_item", "apple", 5, sender=ALICE).ok
    assert "apple" not in harness.sql("SELECT * FROM my_items", ALICE)  # the new module's (empty) result
