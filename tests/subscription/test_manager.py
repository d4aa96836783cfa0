import threading
import time
from typing import Any

import pytest

from spacetimedb.datastore import ST_ROW_LEVEL_SECURITY_ID, Datastore, IndexDef, TableDef
from spacetimedb.sats import IDENTITY, STRING, U8, U32, U64, Identity, codec
from spacetimedb.subscription import SubscriptionError, SubscriptionManager, TableDelta

from .helpers import ClientView, commit_and_evaluate, expected_rows

OWNER = Identity(0xAA)
ALICE = Identity(1)
BOB = Identity(2)

PLAYER = "player"
PLAYER_COLUMNS = [("id", U64), ("name", STRING), ("team", U32), ("score", U32), ("owner", IDENTITY)]


def player(i, team=None, score=0, owner=ALICE):
    return (i, f"p{i}", i % 10 if team is None else team, score, owner)


@pytest.fixture
def ds():
    ds = Datastore()
    tx = ds.begin_mut_tx()
    p = tx.create_table(
        TableDef(
            PLAYER,
            PLAYER_COLUMNS,
            indexes=[IndexDef((0,)), IndexDef((2,))],
            unique_constraints=[((0,), None)],
            primary_key=0,
        )
    )
    t = tx.create_table(
        TableDef(
            "team",
            [("id", U32), ("name", STRING), ("region", U8)],
            indexes=[IndexDef((0,)), IndexDef((2,))],
            unique_constraints=[((0,), None)],
            primary_key=0,
        )
    )
    tx.create_table(TableDef("log", [("msg", STRING), ("team", U32)]))
    tx.create_table(TableDef("hidden", [("x", U32)], public=False))
    for i in range(100):
        tx.insert(p.table_id, player(i, owner=ALICE if i % 2 else BOB))
    for i in range(10):
        tx.insert(t.table_id, (i, f"t{i}", i % 3))
    ds.commit(tx)
    return ds


@pytest.fixture
def manager():
    return SubscriptionManager()


def subscribe(ds, manager, client, queries, caller=OWNER, owner=True, qsid=0):
    with ds.begin_tx() as tx:
        return manager.subscribe(client, qsid, queries, caller, owner, tx)


def table_id(ds, name):
    with ds.begin_tx() as tx:
        return tx.table_id(name)


def decode_player(data):
    return codec(
        __import__("spacetimedb.sats", fromlist=["ProductType"]).ProductType.of(*PLAYER_COLUMNS)
    ).decode(data)


def update_player(ds, manager, row):
    pid = table_id(ds, PLAYER)

    def body(tx):
        index = tx.schema(pid).indexes[0].index_id
        tx.update(pid, index, row)

    return commit_and_evaluate(ds, manager, body)


# ---- subscribe / initial rows ----------------------------------------------------------------------------


def test_initial_rows_are_grouped_bsatn(ds, manager):
    tables = subscribe(
        ds, manager, "c", ["SELECT * FROM player WHERE id = 3", "SELECT * FROM team WHERE id = 1"]
    )
    assert [(t.table_name, len(t.rows)) for t in tables] == [("player", 1), ("team", 1)]
    assert decode_player(tables[0].rows[0]) == player(3, owner=ALICE)
    tables = subscribe(
        ds, manager, "c", ["SELECT * FROM player WHERE team = 1", "SELECT * FROM player WHERE id = 1"], qsid=1
    )
    assert len(tables) == 1 and len(tables[0].rows) == 11  # one entry per table, multiplicity kept


def test_errors_name_the_query_and_register_nothing(ds, manager):
    with pytest.raises(SubscriptionError) as info:
        subscribe(ds, manager, "c", ["SELECT * FROM player", "SELECT * FROM nope"])
    assert str(info.value) == (
        "no such table: `nope`. If the table exists, it may be marked private., executing: `SELECT * FROM nope`"
    )
    assert info.value.query == "SELECT * FROM nope"
    assert manager.query_count == 0 and manager.subscriptions("c") == {}
    with pytest.raises(SubscriptionError, match="no such table: `hidden`"):
        subscribe(ds, manager, "c", ["SELECT * FROM hidden"], ALICE, owner=False)
    subscribe(ds, manager, "c", ["SELECT * FROM hidden"])


def test_joins_need_indexes_on_both_columns(ds, manager):
    with pytest.raises(SubscriptionError, match="Subscriptions require indexes on join columns"):
        subscribe(ds, manager, "c", ["SELECT team.* FROM team JOIN log ON team.id = log.team"])
    with pytest.raises(SubscriptionError, match="Subscriptions require indexes on join columns"):
        subscribe(ds, manager, "c", ["SELECT player.* FROM player JOIN team ON player.score = team.id"])
    subscribe(ds, manager, "c", ["SELECT player.* FROM player JOIN team ON player.team = team.id"])


def test_duplicate_query_set_id_is_rejected(ds, manager):
    subscribe(ds, manager, "c", ["SELECT * FROM team"])
    with pytest.raises(SubscriptionError, match="Query set 0 is already subscribed"):
        subscribe(ds, manager, "c", ["SELECT * FROM team"])


def test_row_limit_applies_to_non_owner_subscriptions(ds, manager):
    tx = ds.begin_mut_tx()
    from spacetimedb import sql

    sql.execute(sql.compile("SET row_limit = 50", tx, OWNER, True), tx)
    ds.commit(tx)
    with pytest.raises(
        SubscriptionError, match=r"Estimated cardinality \(100 rows\) exceeds limit \(50 rows\)"
    ):
        subscribe(ds, manager, "c", ["SELECT * FROM player"], ALICE, owner=False)
    subscribe(ds, manager, "c", ["SELECT * FROM player WHERE id = 1"], ALICE, owner=False)
    subscribe(ds, manager, "d", ["SELECT * FROM player"], OWNER, owner=True)


# ---- evaluation ------------------------------------------------------------------------------------------


def test_single_row_subscription_sees_update_as_delete_and_insert(ds, manager):
    subscribe(ds, manager, "c", ["SELECT * FROM player WHERE id = 3"])
    subscribe(ds, manager, "d", ["SELECT * FROM player WHERE id = 4"])
    result = update_player(ds, manager, player(3, score=7, owner=ALICE))
    assert list(result.updates) == ["c"]
    ((qsid, delta),) = result.updates["c"]
    assert qsid == 0 and delta.table_name == "player"
    assert [decode_player(b) for b in delta.inserts] == [player(3, score=7, owner=ALICE)]
    assert [decode_player(b) for b in delta.deletes] == [player(3, owner=ALICE)]
    assert result.candidates == 1


def test_identical_queries_are_evaluated_once_and_share_the_delta(ds, manager):
    for client in range(5):
        subscribe(ds, manager, client, ["SELECT * FROM player WHERE id = 3"], ALICE, owner=False)
    subscribe(ds, manager, "spelled-differently", ['select "player".* from "player" where 3 = id'])
    assert manager.query_count == 1
    result = update_player(ds, manager, player(3, score=1, owner=ALICE))
    assert result.candidates == 1
    deltas = [updates[0][1] for updates in result.updates.values()]
    assert len(deltas) == 6 and all(d is deltas[0] for d in deltas)
    assert isinstance(deltas[0], TableDelta) and deltas[0].cache == {}


def test_sender_queries_are_per_caller(ds, manager):
    subscribe(ds, manager, "a", ["SELECT * FROM player WHERE owner = :sender"], ALICE, owner=False)
    subscribe(ds, manager, "b", ["SELECT * FROM player WHERE owner = :sender"], BOB, owner=False)
    assert manager.query_count == 2
    result = update_player(ds, manager, player(3, score=9, owner=ALICE))
    assert list(result.updates) == ["a"]


def test_candidate_selection_is_proportional_to_changed_rows(ds, manager):
    for i in range(100):
        subscribe(ds, manager, i, [f"SELECT * FROM player WHERE id = {i}"])
    subscribe(ds, manager, "range", ["SELECT * FROM player WHERE score > 5"])
    subscribe(ds, manager, "or", ["SELECT * FROM player WHERE id = 50 OR id = 51"])
    result = update_player(ds, manager, player(7, score=1))
    assert result.candidates == 2  # id = 7 and the unindexable range query
    assert set(result.updates) == {7}
    result = update_player(ds, manager, player(51, score=6))
    assert result.candidates == 3
    assert set(result.updates) == {51, "range", "or"}


def test_join_subscription_follows_both_sides(ds, manager):
    query = "SELECT player.* FROM player JOIN team ON player.team = team.id WHERE team.region = 1"
    view = ClientView()
    view.add_rows(subscribe(ds, manager, "c", [query]))
    assert sum(view.table("player").values()) == 30  # teams 1, 4, 7

    pid, tid = table_id(ds, PLAYER), table_id(ds, "team")

    def move_team(tx):
        team_index = tx.schema(tid).indexes[0].index_id
        tx.update(tid, team_index, (2, "t2", 1))  # team 2 joins region 1
        tx.update(tid, team_index, (1, "renamed", 1))  # same region: players unchanged
        tx.update(pid, tx.schema(pid).indexes[0].index_id, player(4, team=2, owner=BOB))  # leaves region 1

    result = commit_and_evaluate(ds, manager, move_team)
    view.apply("c", result)
    assert view.table("player") == expected_rows(ds, [query], OWNER, True)["player"]
    ((_, delta),) = result.updates["c"]
    assert len(delta.inserts) == 11 and len(delta.deletes) == 1  # team 2's players (incl. p4), minus old p4


def test_join_multiplicity(ds, manager):
    query = "SELECT team.* FROM team JOIN player ON team.id = player.team WHERE player.score = 1"
    view = ClientView()
    view.add_rows(subscribe(ds, manager, "c", [query]))
    assert view.table("team") == {}
    for i in (3, 13, 23):
        view.apply("c", update_player(ds, manager, player(i, score=1, owner=BOB if i % 2 == 0 else ALICE)))
    assert list(view.table("team").values()) == [3]  # team 3 once per matching player
    view.apply("c", update_player(ds, manager, player(13, score=0, owner=ALICE)))
    assert list(view.table("team").values()) == [2]


def test_join_edge_trigger_skips_unrelated_changes(ds, manager):
    for k in range(3):
        subscribe(
            ds,
            manager,
            k,
            [f"SELECT player.* FROM player JOIN team ON player.team = team.id WHERE team.id = {k}"],
        )
    result = update_player(ds, manager, player(15, score=3))  # team 5: no subscriber
    assert result.candidates == 0 and result.updates == {}
    result = update_player(ds, manager, player(12, score=3))  # team 2
    assert result.candidates == 1 and set(result.updates) == {2}
    pid = table_id(ds, PLAYER)
    result = commit_and_evaluate(
        ds, manager, lambda tx: tx.delete(pid, player(22, owner=BOB))
    )  # only a delete
    assert result.candidates == 1
    ((_, delta),) = result.updates[2]
    assert delta.inserts == [] and [decode_player(b) for b in delta.deletes] == [player(22, owner=BOB)]


def test_unsubscribe_returns_dropped_rows_and_stops_updates(ds, manager):
    subscribe(ds, manager, "c", ["SELECT * FROM team WHERE region = 0", "SELECT * FROM team WHERE id = 1"])
    with ds.begin_tx() as tx:
        dropped = manager.unsubscribe("c", 0, tx)
    assert [(t.table_name, len(t.rows)) for t in dropped] == [("team", 5)]
    assert manager.query_count == 0 and manager._triggers == {}
    with pytest.raises(SubscriptionError, match="Query set 0 is not subscribed"):
        manager.unsubscribe("c", 0)
    subscribe(ds, manager, "c", ["SELECT * FROM team"], qsid=4)
    assert manager.unsubscribe("c", 4) is None


def test_remove_client_cleans_everything(ds, manager):
    for qsid in range(3):
        subscribe(
            ds, manager, "c", [f"SELECT * FROM player WHERE id = {qsid}", "SELECT * FROM team"], qsid=qsid
        )
    subscribe(ds, manager, "d", ["SELECT * FROM team"])
    assert manager.query_count == 4
    manager.remove_client("c")
    assert manager.query_count == 1 and manager.subscriptions("c") == {}
    assert set(manager._triggers) == {table_id(ds, "team")}
    manager.remove_client("d")
    assert manager._triggers == {} and manager.query_count == 0


def test_union_subscriptions(ds, manager):
    union = "SELECT * FROM player WHERE id = 1 UNION SELECT * FROM player WHERE id = 2"
    union_all = (
        "SELECT player.* FROM player JOIN team ON player.team = team.id WHERE team.id = 1 "
        "UNION ALL SELECT * FROM player WHERE id = 1"
    )
    views = {"u": ClientView(), "a": ClientView()}
    views["u"].add_rows(subscribe(ds, manager, "u", [union]))
    views["a"].add_rows(subscribe(ds, manager, "a", [union_all]))
    assert sum(views["u"].table("player").values()) == 2
    assert sum(views["a"].table("player").values()) == 11  # player 1 twice
    result = update_player(ds, manager, player(1, score=5, owner=ALICE))
    assert result.candidates == 2
    for client, view in views.items():
        view.apply(client, result)
    assert views["u"].table("player") == expected_rows(ds, [union], OWNER, True)["player"]
    assert views["a"].table("player") == expected_rows(ds, [union_all], OWNER, True)["player"]
    result = update_player(ds, manager, player(3, score=5, owner=ALICE))
    assert result.candidates == 0


def test_no_update_when_nothing_matches(ds, manager):
    subscribe(ds, manager, "c", ["SELECT * FROM player WHERE score > 100"])
    result = update_player(ds, manager, player(1, score=5, owner=ALICE))
    assert result.updates == {} and result.candidates == 1


# ---- RLS and schema changes ------------------------------------------------------------------------------


def add_rule(ds, manager, table, rule):
    def body(tx):
        tx.insert(ST_ROW_LEVEL_SECURITY_ID, (tx.table_id(table), rule))

    return commit_and_evaluate(ds, manager, body)


def test_rls_applies_to_non_owner_subscriptions(ds, manager):
    add_rule(ds, manager, PLAYER, "SELECT * FROM player WHERE owner = :sender")
    query = "SELECT * FROM player WHERE team = 3 OR team = 4"
    alice = ClientView()
    alice.add_rows(subscribe(ds, manager, "a", [query], ALICE, owner=False))
    owner = ClientView()
    owner.add_rows(subscribe(ds, manager, "o", [query], OWNER, owner=True))
    assert sum(alice.table("player").values()) == 10 and sum(owner.table("player").values()) == 20
    for row in (player(23, score=4, owner=ALICE), player(33, owner=BOB), player(4, owner=ALICE)):
        result = update_player(ds, manager, row)
        alice.apply("a", result)
        owner.apply("o", result)
    assert alice.table("player") == expected_rows(ds, [query], ALICE, False)["player"]
    assert sum(alice.table("player").values()) == 10
    assert owner.table("player") == expected_rows(ds, [query], OWNER, True)["player"]


def test_changing_rls_rules_drops_non_owner_subscriptions(ds, manager):
    subscribe(ds, manager, "a", ["SELECT * FROM player WHERE id = 1"], ALICE, owner=False)
    subscribe(ds, manager, "o", ["SELECT * FROM player WHERE id = 1"], OWNER, owner=True)
    result = add_rule(ds, manager, PLAYER, "SELECT * FROM player WHERE owner = :sender")
    assert result.errors == {"a": [(0, "Row-level security rules changed; subscribe again")]}
    assert manager.subscriptions("a") == {} and manager.subscriptions("o") == {
        0: ["SELECT * FROM player WHERE id = 1"]
    }


def test_dropping_a_table_drops_its_subscriptions(ds, manager):
    subscribe(ds, manager, "c", ["SELECT * FROM log"])
    subscribe(ds, manager, "d", ["SELECT * FROM team WHERE id = 1"])
    result = commit_and_evaluate(ds, manager, lambda tx: tx.drop_table(tx.table_id("log")))
    assert result.errors == {"c": [(0, "Subscription invalidated: table `log` was dropped; subscribe again")]}
    assert manager.query_count == 1
    assert "d" not in result.updates


def test_adding_an_index_keeps_subscriptions(ds, manager):
    subscribe(ds, manager, "c", ["SELECT * FROM log WHERE team = 1"])

    def body(tx):
        tx.create_index(tx.table_id("log"), IndexDef((1,)))
        tx.insert(tx.table_id("log"), ("hello", 1))

    result = commit_and_evaluate(ds, manager, body)
    assert result.errors == {}
    assert len(result.updates["c"][0][1].inserts) == 1


# ---- concurrency -----------------------------------------------------------------------------------------


def test_concurrent_subscribes_are_exactly_once(ds, manager):
    """A writer commits with the host protocol while other threads subscribe and unsubscribe. Every message
    (initial rows, dropped rows, deltas) is queued under the manager lock, as the server does; replaying each
    client's queue must give exactly a fresh evaluation (or nothing, after unsubscribing)."""
    pid = table_id(ds, PLAYER)
    query = "SELECT * FROM player WHERE team = 4"
    queue: list[tuple[str, Any, Any]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer():
        try:
            for n in range(1, 400):
                if stop.is_set():
                    break

                def body(tx, n=n):
                    row = player(n % 100, team=4 if n % 3 else 5, score=n)
                    tx.update(pid, tx.schema(pid).indexes[0].index_id, row)

                commit_and_evaluate(ds, manager, body, lambda result: queue.append(("tx", None, result)))
        except BaseException as exc:
            errors.append(exc)

    def subscriber(base):
        try:
            for i in range(20):
                time.sleep(0.002)  # spread the requests over the writer's run
                client = base + i
                with ds.begin_tx() as tx:
                    rows = manager.subscribe(client, 0, [query], ALICE, False, tx)
                    with manager.lock:
                        queue.append(("add", client, rows))
                if i % 2:
                    with ds.begin_tx() as tx:
                        rows = manager.unsubscribe(client - 1, 0, tx)
                        with manager.lock:
                            queue.append(("remove", client - 1, rows))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer)] + [
        threading.Thread(target=subscriber, args=(k * 100,)) for k in range(2)
    ]
    for t in threads[1:]:
        t.start()
    threads[0].start()
    for t in threads[1:]:
        t.join()
    stop.set()
    threads[0].join()
    assert errors == []

    views: dict[int, ClientView] = {}
    for kind, client, payload in queue:
        if kind == "add":
            views[client] = ClientView()
            views[client].add_rows(payload)
        elif kind == "remove":
            views[client].remove_rows(payload)
        else:
            for client_id, view in views.items():
                view.apply(client_id, payload)
    expected = expected_rows(ds, [query], ALICE, False)["player"]
    assert len(views) == 40
    for client, view in views.items():
        assert view.table("player") == ({} if client % 2 == 0 else expected), client


def test_select_star_from_star_stands_for_every_readable_user_table(ds, manager):
    """Upstream's ``SELECT * FROM *`` (crates/core/src/subscription/query.rs is_subscribe_to_all_tables, used by
    its smoketests modules.rs and permissions.rs): every user table the caller may read, event tables aside."""
    tx = ds.begin_tx()
    try:
        everything = [
            'SELECT * FROM "hidden"',
            'SELECT * FROM "log"',
            'SELECT * FROM "player"',
            'SELECT * FROM "team"',
        ]
        assert sorted(manager.expand_all_tables([" select *  from * "], tx, True)) == everything
        public = manager.expand_all_tables(["SELECT * FROM *", "SELECT * FROM team WHERE id = 1"], tx, False)
        assert sorted(public) == [
            'SELECT * FROM "log"',
            'SELECT * FROM "player"',
            'SELECT * FROM "team"',
            "SELECT * FROM team WHERE id = 1",
        ]
        manager.event_tables = frozenset({tx.table_id("log")})
        assert 'SELECT * FROM "log"' not in manager.expand_all_tables(["SELECT * FROM *"], tx, True)
        assert manager.expand_all_tables(["SELECT * FROM player"], tx, True) == ["SELECT * FROM player"]
    finally:
        tx.release()
    rows = subscribe(ds, manager, "c1", ["SELECT * FROM *"], caller=ALICE, owner=False)
    assert {t.table_name for t in rows} >= {"player", "team"}
