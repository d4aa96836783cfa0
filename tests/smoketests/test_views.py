"""Upstream's crates/smoketests/tests/cluster/views.rs, ported: views' system tables, SQL over views, their
refresh after commits, subscriptions to them, and views across module updates. The modules are in
``views_modules.py``; each test names the upstream test it ports."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli_e2e.conftest import User
from tests.conftest import ServerProcess
from tests.smoketests import views_modules as modules

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

NOT_APPLICABLE = {
    "test_typescript_procedure_triggers_subscription_updates": "a TypeScript module (another module language)",
    "test_csharp_count_view_subscription_refreshes": "a C# module (another module language)",
    "test_typescript_count_view_subscription_refreshes": "a TypeScript module (another module language)",
    "test_typescript_query_builder_view_query": "a TypeScript module's query builder (another module language)",
    "test_csharp_query_builder_view_query": "a C# module's query builder (another module language)",
}

Publish = Callable[[str], str]  # module source -> the new database's name


# ---- harness: upstream's Smoketest calls, through `spacetime` ---------------------------------------------------


def normalized(text: str) -> str:
    """As upstream's assert_sql compares: each line without its trailing spaces, no trailing blank lines."""
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def assert_sql(user: User, database: str, query: str, expected: str) -> None:
    result = user("sql", database, query)
    assert result.code == 0, result
    assert normalized(result.out) == normalized(expected), (query, result.out)


def run_sql(user: User, database: str, query: str) -> None:
    result = user("sql", database, query)
    assert result.code == 0, result


def call(user: User, database: str, reducer: str, *args: str) -> None:
    result = user("call", database, reducer, *args)
    assert result.code == 0, result


def log_count(user: User, database: str, text: str) -> int:
    """How many of the last 100 module log records contain ``text`` (upstream's ``logs(100)`` then a filter)."""
    result = user("logs", database, "-n", "100", "--json")
    assert result.code == 0, result
    messages = [json.loads(line).get("message", "") for line in result.out.splitlines() if line.strip()]
    return sum(text in message for message in messages)


class Subscription:
    """Upstream's ``subscribe(...).expect_rows(n).background()``: `spacetime subscribe` in the background,
    returned once the initial update is printed (so the subscription is in place); ``collect`` waits for ``n``
    updates (or, without ``n``, for the server to end the subscription) and returns them."""

    def __init__(self, user: User, database: str, query: str, updates: int | None) -> None:
        count = ["-n", str(updates)] if updates is not None else []
        self.process = user.start("subscribe", database, query, *count, "-t", "60", "--print-initial-update")
        assert self.process.stdout is not None
        self.initial = self.process.stdout.readline()
        assert self.initial, self.finish()

    def finish(self) -> str:
        out, err = self.process.communicate(timeout=90)
        return f"exit {self.process.returncode}\n{out}\n{err}"

    def collect(self) -> list[Any]:
        """The updates printed after the initial one; as upstream's, fails if `spacetime subscribe` did."""
        out, err = self.process.communicate(timeout=90)
        assert self.process.returncode == 0, (self.process.returncode, out, err)
        return [json.loads(line) for line in out.splitlines() if line.strip()]


def project(events: list[Any], view: str, fields: tuple[str, ...]) -> list[Any]:
    """Upstream's project_fields: each event's deletes and inserts of ``view``, keeping only ``fields``."""

    def row(value: dict[str, Any]) -> dict[str, Any]:
        return {field: value[field] for field in fields if field in value}

    return [
        {view: {kind: [row(r) for r in event[view][kind]] for kind in ("deletes", "inserts")}}
        for event in events
    ]


# ---- fixtures: one server, one owner, published databases by module -------------------------------------------


@pytest.fixture(scope="module")
def owner(tmp_path_factory: pytest.TempPathFactory, shared_server: ServerProcess) -> User:
    return User(tmp_path_factory.mktemp("owner") / "config", shared_server.url)


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory, shared_server: ServerProcess) -> User:
    """upstream's ``new_identity()``: a second identity on the same server."""
    return User(tmp_path_factory.mktemp("other") / "config", shared_server.url)


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("modules")


def write_module(directory: Path, source: str) -> Path:
    path = directory / f"module_{uuid.uuid4().hex[:8]}.py"
    path.write_text(source)
    return path


@pytest.fixture(scope="module")
def publish(owner: User, module_dir: Path) -> Publish:
    """Publish ``source`` as the owner to a fresh database; its name."""

    def run(source: str) -> str:
        name = f"views-{uuid.uuid4().hex[:12]}"
        owner.publish(name, write_module(module_dir, source))
        return name

    return run


@pytest.fixture(scope="module")
def update(owner: User, module_dir: Path) -> Callable[..., Any]:
    """Publish ``source`` over the database ``name`` (an automatic migration); the `spacetime` result."""

    def run(name: str, source: str, *flags: str) -> Any:
        return owner("publish", name, "-p", str(write_module(module_dir, source)), "-y", *flags)

    return run


@pytest.fixture(scope="module")
def query_db(publish: Publish) -> str:
    """views-query, shared by the tests that only read it."""
    return publish(modules.VIEWS_QUERY)


@pytest.fixture
def subscriptions() -> Iterator[list[Subscription]]:
    """The subscriptions a test starts (``subscribe``), killed after it if still running."""
    started: list[Subscription] = []
    yield started
    for subscription in started:
        if subscription.process.poll() is None:
            subscription.process.kill()
            subscription.process.communicate(timeout=30)


def subscribe(
    started: list[Subscription], user: User, database: str, query: str, updates: int | None
) -> Subscription:
    subscription = Subscription(user, database, query, updates)
    started.append(subscription)
    return subscription


# ---- system tables and publishing -----------------------------------------------------------------------------


def test_st_view_tables(owner: User, publish: Publish) -> None:
    """Upstream test_st_view_tables: a view has its row in st_view (its backing table, public, not anonymous)
    and its columns in st_view_column."""
    database = publish(modules.VIEWS_BASIC)
    assert_sql(
        owner,
        database,
        "SELECT * FROM st_view",
        """
 view_id | view_name | table_id      | is_public | is_anonymous
---------+-----------+---------------+-----------+--------------
 4096    | "player"  | (some = 4097) | true      | false""",
    )
    assert_sql(
        owner,
        database,
        "SELECT * FROM st_view_column",
        """
 view_id | col_pos | col_name | col_type
---------+---------+----------+----------
 4096    | 0       | "id"     | 0x0d
 4096    | 1       | "level"  | 0x0d""",
    )


def refused_publish(owner: User, module_dir: Path, source: str) -> str:
    """Publish ``source`` to a fresh name, expecting a refusal; its error output."""
    module = write_module(module_dir, source)
    result = owner("publish", f"views-{uuid.uuid4().hex[:12]}", "-p", str(module))
    assert result.code != 0, result
    return result.err


def test_fail_publish_namespace_collision(owner: User, module_dir: Path) -> None:
    """Upstream test_fail_publish_namespace_collision: a view named as a table does not publish."""
    assert "person" in refused_publish(owner, module_dir, modules.VIEWS_BROKEN_NAMESPACE)


def test_fail_publish_wrong_return_type(owner: User, module_dir: Path) -> None:
    """Upstream test_fail_publish_wrong_return_type: a view whose rows are not a product type does not publish."""
    assert "ABC" in refused_publish(owner, module_dir, modules.VIEWS_BROKEN_RETURN_TYPE)


# ---- SQL over views --------------------------------------------------------------------------------------------


def test_http_sql_views(owner: User, publish: Publish) -> None:
    """Upstream test_http_sql_views: SQL reads a view's rows like a table's, for an optional row and a list."""
    database = publish(modules.VIEWS_SQL)
    run_sql(owner, database, "INSERT INTO player_state (id, level) VALUES (42, 7)")
    assert_sql(owner, database, "SELECT * FROM player", " id | level\n----+-------\n 42 | 7")
    assert_sql(owner, database, "SELECT * FROM player_none", " id | level\n----+-------")
    assert_sql(owner, database, "SELECT * FROM player_vec", " id | level\n----+-------\n 42 | 7\n 7  | 3")


def test_view_materialization(owner: User, publish: Publish) -> None:
    """Upstream test_view_materialization: a view read over SQL is materialized: it runs once for the first
    query, not again for the same query, again after a change to the row it read (at the commit, before any
    query), and not after a change to another row."""
    database = publish(modules.VIEWS_SQL)
    called = "player view called"
    assert_sql(owner, database, "SELECT * FROM player", " id | level\n----+-------")
    assert log_count(owner, database, called) == 1
    run_sql(owner, database, "INSERT INTO player_state (id, level) VALUES (42, 7);")
    assert_sql(owner, database, "SELECT * FROM player", " id | level\n----+-------\n 42 | 7")
    assert log_count(owner, database, called) == 2
    assert_sql(owner, database, "SELECT * FROM player", " id | level\n----+-------\n 42 | 7")
    assert log_count(owner, database, called) == 2
    run_sql(owner, database, "INSERT INTO player_state (id, level) VALUES (22, 8);")
    assert_sql(owner, database, "SELECT * FROM player", " id | level\n----+-------\n 42 | 7")
    assert log_count(owner, database, called) == 2
    run_sql(owner, database, "UPDATE player_state SET level = 9 WHERE id = 42;")
    assert log_count(owner, database, called) == 3
    run_sql(owner, database, "UPDATE player_state SET level = 7 WHERE id = 42;")


def test_view_multi_index_materialization(owner: User, publish: Publish) -> None:
    """Upstream test_view_multi_index_materialization: the same over a two-column index lookup."""
    database = publish(modules.VIEWS_SQL)
    called = "player_info called"
    empty = " id | age | level\n----+-----+-------"
    assert_sql(owner, database, "SELECT * FROM player_info_multi_index", empty)
    assert log_count(owner, database, called) == 1
    run_sql(owner, database, "INSERT INTO player_info (id, age, level) VALUES (1, 25, 7);")
    assert_sql(owner, database, "SELECT * FROM player_info_multi_index", empty + "\n 1  | 25  | 7")
    assert log_count(owner, database, called) == 2
    run_sql(owner, database, "INSERT INTO player_info (id, age, level) VALUES (2, 25, 8);")
    assert log_count(owner, database, called) == 2
    run_sql(owner, database, "UPDATE player_info SET age = 26 WHERE id = 1;")
    assert log_count(owner, database, called) == 3
    assert_sql(owner, database, "SELECT * FROM player_info_multi_index", empty)


def test_query_anonymous_view_reducer(owner: User, publish: Publish) -> None:
    """Upstream test_query_anonymous_view_reducer: anonymous views follow the rows reducers insert, and a WHERE
    clause filters a view."""
    database = publish(modules.VIEWS_SQL)
    call(owner, database, "add_player_level", "0", "1")
    call(owner, database, "add_player_level", "1", "2")
    header = " id | level\n----+-------"
    assert_sql(owner, database, "SELECT * FROM my_player_and_level", header + "\n 0  | 1")
    assert_sql(owner, database, "SELECT * FROM player_and_level", header + "\n 1  | 2")
    call(owner, database, "add_player_level", "2", "2")
    assert_sql(owner, database, "SELECT * FROM player_and_level", header + "\n 1  | 2\n 2  | 2")
    assert_sql(owner, database, "SELECT * FROM player_and_level WHERE id = 2", header + "\n 2  | 2")


# ---- views across module updates -------------------------------------------------------------------------------


def test_views_auto_migration(owner: User, publish: Publish, update: Callable[..., Any]) -> None:
    """Upstream test_views_auto_migration: after an update that changes a view's body, SQL reads the new body's
    result."""
    database = publish(modules.VIEWS_AUTO_MIGRATE)
    run_sql(owner, database, "INSERT INTO player_state (id, level) VALUES (1, 1);")
    run_sql(owner, database, "INSERT INTO player_state (id, level) VALUES (2, 2);")
    assert_sql(owner, database, "SELECT * FROM player", " id | level\n----+-------\n 1  | 1")
    result = update(database, modules.VIEWS_AUTO_MIGRATE_UPDATED)
    assert result.code == 0, result
    assert_sql(owner, database, "SELECT * FROM player", " id | level\n----+-------\n 2  | 2")


def test_views_auto_migration_stable(
    owner: User, publish: Publish, update: Callable[..., Any], subscriptions: list[Subscription]
) -> None:
    """Upstream test_views_auto_migration_stable: a subscription to a view survives an update that adds another
    view before it, and its next update has the view's rows (not another view's)."""
    database = publish(modules.VIEWS_AUTO_MIGRATE_STABLE)
    call(owner, database, "seed")
    subscription = subscribe(subscriptions, owner, database, "SELECT * FROM z_counter", 1)
    result = update(database, modules.VIEWS_AUTO_MIGRATE_STABLE_UPDATED)
    assert result.code == 0, result
    call(owner, database, "bump_counter")
    assert project(subscription.collect(), "z_counter", ("id", "value")) == [
        {"z_counter": {"deletes": [{"id": 0, "value": 0}], "inserts": [{"id": 0, "value": 1}]}}
    ]


def test_views_auto_migration_read_set(
    owner: User, publish: Publish, update: Callable[..., Any], subscriptions: list[Subscription]
) -> None:
    """Upstream test_views_auto_migration_read_set: an update re-evaluates a subscribed view, and afterwards the
    view depends on what its new body read, not on what the old one read."""
    database = publish(modules.VIEWS_AUTO_MIGRATE_READ_SET)
    call(owner, database, "seed")
    subscribe(subscriptions, owner, database, "SELECT * FROM switched", 2)
    result = update(database, modules.VIEWS_AUTO_MIGRATE_READ_SET_UPDATED)
    assert result.code == 0, result
    after_publish = log_count(owner, database, modules.SWITCHED_LOG)
    assert after_publish > 0, "the updated view runs during the publish"
    call(owner, database, "touch_old")
    assert log_count(owner, database, modules.SWITCHED_LOG) == after_publish


def test_auto_migration_drop_view(publish: Publish, update: Callable[..., Any]) -> None:
    """Upstream test_auto_migration_drop_view: removing a view is an automatic migration."""
    database = publish(modules.VIEWS_AUTO_MIGRATE)
    result = update(database, modules.VIEWS_DROP_VIEW)
    assert result.code == 0, result


def test_auto_migration_add_view(publish: Publish, update: Callable[..., Any]) -> None:
    """Upstream test_auto_migration_add_view: adding a view is an automatic migration."""
    database = publish(modules.VIEWS_DROP_VIEW)
    result = update(database, modules.VIEWS_AUTO_MIGRATE)
    assert result.code == 0, result


def test_view_primary_key_auto_migration_disconnects_clients(
    owner: User, publish: Publish, update: Callable[..., Any], subscriptions: list[Subscription]
) -> None:
    """Upstream test_view_primary_key_auto_migration_disconnects_clients: giving a view a primary key is an
    automatic migration that, with --break-clients, disconnects the subscribed clients ("Disconnecting all
    users" in the module log) and runs client_disconnected for them."""
    database = publish(modules.VIEWS_PRIMARY_KEY_AUTO_MIGRATE)
    subscription = subscribe(subscriptions, owner, database, "select * from player", None)
    result = update(database, modules.VIEWS_PRIMARY_KEY_AUTO_MIGRATE_UPDATED, "--break-clients")
    assert result.code == 0, result
    subscription.collect()
    assert log_count(owner, database, "Disconnecting all users") > 0
    assert log_count(owner, database, "VIEW PRIMARY KEY UPDATE: client disconnected") > 0


def test_view_accessibility(owner: User, other: User, publish: Publish) -> None:
    """Upstream test_view_accessibility: a reducer may call a view's function itself."""
    database = publish(modules.VIEWS_CALLABLE)
    call(other, database, "baz")
    assert_sql(owner, database, "SELECT * FROM items", " value\n-------\n 7")


def test_recovery_from_trapped_views_auto_migration(
    owner: User, publish: Publish, update: Callable[..., Any]
) -> None:
    """Upstream test_recovery_from_trapped_views_auto_migration: an update whose view fails (for a caller that
    read it) is refused and leaves the database as it was; a later good update goes through."""
    database = publish(modules.VIEWS_AUTO_MIGRATE)
    run_sql(owner, database, "INSERT INTO player_state (id, level) VALUES (1, 1);")
    assert_sql(owner, database, "SELECT * FROM player", " id | level\n----+-------\n 1  | 1")
    result = update(database, modules.VIEWS_TRAPPED)
    assert result.code != 0, result
    assert_sql(owner, database, "SELECT * FROM player", " id | level\n----+-------\n 1  | 1")
    result = update(database, modules.VIEWS_RECOVERED)
    assert result.code == 0, result
    assert_sql(owner, database, "SELECT * FROM player", " id | level\n----+-------")


# ---- subscriptions to views ------------------------------------------------------------------------------------


def test_subscribing_with_different_identities(
    owner: User, other: User, publish: Publish, subscriptions: list[Subscription]
) -> None:
    """Upstream test_subscribing_with_different_identities: a per-caller view sends each subscriber its own
    rows: another identity's insert is not in mine, my own is."""
    database = publish(modules.VIEWS_SUBSCRIBE)
    call(owner, database, "insert_player", '"Alice"')
    subscription = subscribe(subscriptions, other, database, "select * from my_player", 1)
    call(other, database, "insert_player", '"Bob"')
    assert project(subscription.collect(), "my_player", ("name",)) == [
        {"my_player": {"deletes": [], "inserts": [{"name": "Bob"}]}}
    ]


def test_query_view(owner: User, query_db: str) -> None:
    """Upstream test_query_view: a view filtering a table."""
    assert_sql(
        owner,
        query_db,
        "SELECT * FROM online_users",
        ' identity | name    | online\n----------+---------+--------\n 1        | "Alice" | true',
    )


def test_query_right_semijoin_view(owner: User, query_db: str) -> None:
    """Upstream test_query_right_semijoin_view: the persons of the online users."""
    assert_sql(
        owner,
        query_db,
        "SELECT * FROM online_users_age",
        ' identity | name    | age\n----------+---------+-----\n 1        | "Alice" | 30',
    )


def test_query_left_semijoin_view(owner: User, query_db: str) -> None:
    """Upstream test_query_left_semijoin_view: the users who have a person row."""
    assert_sql(
        owner,
        query_db,
        "SELECT * FROM users_whos_age_is_known",
        ' identity | name    | online\n----------+---------+--------\n 1        | "Alice" | true\n'
        ' 2        | "BOB"   | false',
    )


def test_query_complex_right_semijoin_view(owner: User, query_db: str) -> None:
    """Upstream test_query_complex_right_semijoin_view: a filter on both sides of the semijoin."""
    assert_sql(
        owner,
        query_db,
        "SELECT * FROM offline_user_20_years_old",
        ' identity | name  | online\n----------+-------+--------\n 2        | "BOB" | false',
    )


def test_where_expr_view(owner: User, query_db: str) -> None:
    """Upstream test_where_expr_view: strict and inclusive range conditions."""
    assert_sql(
        owner,
        query_db,
        "SELECT * FROM users_who_are_above_20_and_below_30",
        " identity | name | age\n----------+------+-----",
    )
    assert_sql(
        owner,
        query_db,
        "SELECT * FROM users_who_are_above_eq_20_and_below_eq_30",
        ' identity | name    | age\n----------+---------+-----\n 1        | "Alice" | 30\n 2        | "BOB"   | 20',
    )


def test_procedure_triggers_subscription_updates(
    owner: User, publish: Publish, subscriptions: list[Subscription]
) -> None:
    """Upstream test_procedure_triggers_subscription_updates: a procedure's transaction refreshes a view."""
    database = publish(modules.VIEWS_SUBSCRIBE)
    subscription = subscribe(subscriptions, owner, database, "select * from my_player", 1)
    call(owner, database, "insert_player_proc", '"Alice"')
    assert project(subscription.collect(), "my_player", ("name",)) == [
        {"my_player": {"deletes": [], "inserts": [{"name": "Alice"}]}}
    ]


def test_rust_count_view_subscription_refreshes(
    owner: User, publish: Publish, subscriptions: list[Subscription]
) -> None:
    """Upstream test_rust_count_view_subscription_refreshes (its module rewritten in Python): a view over
    count() changes with inserts and deletes, and a delete-then-insert of the same key in one transaction
    leaves it unchanged, so it sends no update."""
    database = publish(modules.VIEWS_COUNT)
    for view, key, value, updated in (
        ("sender_table_count", "1", "10", "11"),
        ("anon_table_count", "2", "20", "21"),
    ):
        subscription = subscribe(subscriptions, owner, database, f"select * from {view}", 2)
        call(owner, database, "insert_item", key, value)
        call(owner, database, "replace_item", key, updated)
        call(owner, database, "delete_item", key)
        assert project(subscription.collect(), view, ("count",)) == [
            {view: {"deletes": [{"count": 0}], "inserts": [{"count": 1}]}},
            {view: {"deletes": [{"count": 1}], "inserts": [{"count": 0}]}},
        ]


def test_disconnect_does_not_break_sender_view(
    owner: User, publish: Publish, subscriptions: list[Subscription]
) -> None:
    """Upstream test_disconnect_does_not_break_sender_view: when one of two connections subscribed to the same
    per-caller view leaves, the other keeps getting its updates."""
    database = publish(modules.VIEWS_SQL)
    call(owner, database, "set_player_state", "42", "1")
    keep = subscribe(subscriptions, owner, database, "SELECT * FROM player", 2)
    drop = subscribe(subscriptions, owner, database, "SELECT * FROM player", 1)
    call(owner, database, "set_player_state", "42", "2")
    drop.collect()
    call(owner, database, "set_player_state", "42", "3")
    events = keep.collect()
    assert len(events) == 2, events
    assert {"id": 42, "level": 3} in events[1]["player"]["inserts"], events


def test_disconnect_does_not_break_anonymous_view(
    owner: User, publish: Publish, subscriptions: list[Subscription]
) -> None:
    """Upstream test_disconnect_does_not_break_anonymous_view: the same for an anonymous view."""
    database = publish(modules.VIEWS_SQL)
    call(owner, database, "add_player_level", "0", "2")
    keep = subscribe(subscriptions, owner, database, "SELECT * FROM player_and_level", 2)
    drop = subscribe(subscriptions, owner, database, "SELECT * FROM player_and_level", 1)
    call(owner, database, "add_player_level", "1", "2")
    drop.collect()
    call(owner, database, "add_player_level", "2", "2")
    events = keep.collect()
    assert len(events) == 2, events
    assert {"id": 2, "level": 2} in events[1]["player_and_level"]["inserts"], events


# ---- joins of views with primary keys --------------------------------------------------------------------------

UPDATE_LHS, UPDATE_RHS, DELETE_LHS = "update_pk_join_lhs", "update_pk_join_rhs", "delete_pk_join_lhs"


def mutations(third: tuple[str, int, bool | None], sixth: tuple[str, int, bool | None]) -> list[Any]:
    """Upstream's mutation lists: row 1 appears (left, then right side), ``third`` takes it away; row 2 appears
    (right, then left side), ``sixth`` takes it away."""
    return [
        (UPDATE_LHS, 1, True),
        (UPDATE_RHS, 1, True),
        third,
        (UPDATE_RHS, 2, True),
        (UPDATE_LHS, 2, True),
        sixth,
    ]


FILTERED_BOTH_SIDES = mutations((UPDATE_RHS, 1, False), (UPDATE_LHS, 2, False))
FILTERED_LEFT_SIDE = mutations((UPDATE_LHS, 1, False), (UPDATE_LHS, 2, False))
DELETING = mutations((DELETE_LHS, 1, None), (DELETE_LHS, 2, None))


def run_pk_join_subscription(
    owner: User,
    other: User,
    publish: Publish,
    subscriptions: list[Subscription],
    query: str,
    view: str,
    mutations: list[tuple[str, int, bool | None]],
) -> None:
    """Upstream run_pk_join_subscription_test: rows of one identity in both tables, then another identity
    subscribes to the join and changes its own rows; it sees its row 1 come and go, then its row 2."""
    database = publish(modules.VIEWS_QUERY)
    call(owner, database, UPDATE_LHS, "200", "true")
    call(owner, database, UPDATE_RHS, "200", "true")
    subscription = subscribe(subscriptions, other, database, query, 4)
    for reducer, key, ok in mutations:
        call(other, database, reducer, str(key), *([] if ok is None else [json.dumps(ok)]))
    assert project(subscription.collect(), view, ("id", "ok")) == [
        {view: {"deletes": [], "inserts": [{"id": 1, "ok": True}]}},
        {view: {"deletes": [{"id": 1, "ok": True}], "inserts": []}},
        {view: {"deletes": [], "inserts": [{"id": 2, "ok": True}]}},
        {view: {"deletes": [{"id": 2, "ok": True}], "inserts": []}},
    ]


def join(left: str, right: str, on: str = "id", where: str = "") -> str:
    return f"SELECT {left}.* FROM {left} JOIN {right} ON {left}.{on} = {right}.{on}" + (
        f" WHERE {where}" if where else ""
    )


def test_subscribe_join_pk_views_with_filters_on_both_sides(
    owner: User, other: User, publish: Publish, subscriptions: list[Subscription]
) -> None:
    """Upstream test_subscribe_join_pk_views_with_filters_on_both_sides: a join of two per-caller views."""
    left, right = "pk_join_lhs_sender_view", "pk_join_rhs_sender_view"
    query = join(left, right, where=f"{left}.ok = true AND {right}.ok = true")
    run_pk_join_subscription(owner, other, publish, subscriptions, query, left, FILTERED_BOTH_SIDES)


def test_subscribe_join_anon_pk_views_with_filters_on_both_sides(
    owner: User, other: User, publish: Publish, subscriptions: list[Subscription]
) -> None:
    """Upstream test_subscribe_join_anon_pk_views_with_filters_on_both_sides: a join of two anonymous views."""
    left, right = "pk_join_lhs_view", "pk_join_rhs_view"
    query = join(left, right, where=f"{left}.ok = true AND {right}.ok = true")
    run_pk_join_subscription(owner, other, publish, subscriptions, query, left, FILTERED_BOTH_SIDES)


def test_subscribe_join_anon_pk_view_with_table_and_filter(
    owner: User, other: User, publish: Publish, subscriptions: list[Subscription]
) -> None:
    """Upstream test_subscribe_join_anon_pk_view_with_table_and_filter: an anonymous view joined with a table,
    filtered on both and on :sender."""
    left = "pk_join_lhs_view"
    query = join(left, "pk_join_rhs", where=f"{left}.ok = true AND pk_join_rhs.identity = :sender")
    run_pk_join_subscription(owner, other, publish, subscriptions, query, left, FILTERED_LEFT_SIDE)


def test_subscribe_join_anon_pk_view_with_table(
    owner: User, other: User, publish: Publish, subscriptions: list[Subscription]
) -> None:
    """Upstream test_subscribe_join_anon_pk_view_with_table: an anonymous view joined with a table on
    :sender."""
    left = "pk_join_lhs_view"
    query = join(left, "pk_join_rhs", where="pk_join_rhs.identity = :sender")
    run_pk_join_subscription(owner, other, publish, subscriptions, query, left, DELETING)


def test_subscribe_join_pk_view_with_table(
    owner: User, other: User, publish: Publish, subscriptions: list[Subscription]
) -> None:
    """Upstream test_subscribe_join_pk_view_with_table: a per-caller view joined with a table."""
    left = "pk_join_lhs_sender_view"
    run_pk_join_subscription(owner, other, publish, subscriptions, join(left, "pk_join_rhs"), left, DELETING)
