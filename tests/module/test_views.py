"""Views in the module layer: declaration problems, the RawModuleDef entries, migrations, read-only ``ctx.db``."""

from __future__ import annotations

from typing import Any

import pytest

from spacetimedb import datastore as ds
from spacetimedb.client.schema import ModuleSchema
from spacetimedb.module import (
    ModuleError,
    ReadOnlyError,
    ViewError,
    apply_migration,
    call_view,
    plan_migration,
)
from spacetimedb.sats import IDENTITY, U32
from spacetimedb.sats.meta import type_from_bsatn

from .helpers import ALICE, BOB, DATABASE, Db, load_source

PLAYER = """
        @table(public=True)
        class Player:
            identity: Annotated[Identity, PrimaryKey]
            score: u32

        @stdb_type
        class Score:
            value: u32

        @reducer
        def join(ctx: ReducerContext, score: u32) -> None:
            ctx.db.player.insert(Player(identity=ctx.sender, score=score))
        """

GOOD_VIEWS = """
        @view(public=True)
        def me(ctx: ViewContext) -> Optional[Player]:
            return ctx.db.player.identity.find(ctx.sender)

        @anonymous_view(public=True)
        def scores(ctx: AnonymousViewContext) -> list[Score]:
            return [Score(value=p.score) for p in ctx.db.player.iter()]

        @anonymous_view
        def lazy(ctx: AnonymousViewContext) -> list[Player]:
            yield from ctx.db.player.iter()

        @anonymous_view
        def best(ctx: AnonymousViewContext) -> Score:
            return Score(value=max((p.score for p in ctx.db.player.iter()), default=0))
        """

PROBLEMS = {
    "wrong context type": (
        """
        @view(public=True)
        def v(ctx: AnonymousViewContext) -> list[Player]:
            return []
        """,
        ["view `v` (at module.py:", "annotated AnonymousViewContext, but a @view takes ViewContext"],
    ),
    "reducer context": (
        """
        @anonymous_view(public=True)
        def v(ctx: ReducerContext) -> list[Player]:
            return []
        """,
        ["anonymous view `v`", "must be the AnonymousViewContext, but `ctx` is annotated ReducerContext"],
    ),
    "arguments beyond the context": (
        """
        @view(public=True)
        def v(ctx: ViewContext, limit: u32) -> list[Player]:
            return []
        """,
        ["view `v`", "a view takes only its context (ctx: ViewContext); remove `limit`"],
    ),
    "no return annotation": (
        """
        @view(public=True)
        def v(ctx: ViewContext):
            return []
        """,
        ["view `v`", "needs a return annotation"],
    ),
    "not a row type": (
        """
        @view(public=True)
        def v(ctx: ViewContext) -> list[u32]:
            return []
        """,
        ["view `v`", "a view returns a @table or @type class, Optional[Row] or list[Row]"],
    ),
    "name clash with a table": (
        """
        @view(public=True)
        def player(ctx: ViewContext) -> Optional[Player]:
            return None
        """,
        ["view `player`", "the name `player` is already used by table `player`"],
    ),
    "two views with one name": (
        """
        @view(public=True)
        def twice(ctx: ViewContext) -> Optional[Player]:
            return None

        @view(public=True, name="twice")
        def again(ctx: ViewContext) -> Optional[Player]:
            return None
        """,
        ["view `twice`", "duplicate view name (also declared at module.py:"],
    ),
    "primary key not a column": (
        """
        @view(public=True, primary_key="id")
        def v(ctx: ViewContext) -> list[Player]:
            return []
        """,
        ["view `v`", "its primary key `id` is not a column of its rows (they are `identity`, `score`)"],
    ),
    "primary key not a name": (
        """
        @anonymous_view(public=True, primary_key=0)
        def v(ctx: AnonymousViewContext) -> list[Player]:
            return []
        """,
        ["@anonymous_view at module.py:", "primary_key must be the name of one column of its rows, got 0"],
    ),
}


@pytest.mark.parametrize("case", sorted(PROBLEMS))
def test_view_declaration_problems_are_named(case):
    source, expected = PROBLEMS[case]
    with pytest.raises(ModuleError) as error:
        load_source(PLAYER + source)
    for text in expected:
        assert text in str(error.value)


def test_views_in_the_raw_module_def():
    module = load_source(PLAYER + GOOD_VIEWS).module_def
    exports = [e["View"] for e in module.raw_v9_json()["misc_exports"] if "View" in e]
    player_ref = module.tables["player"].product_type_ref
    assert [(v["name"], v["index"], v["is_public"], v["is_anonymous"]) for v in exports] == [
        ("me", 0, True, False),
        ("scores", 1, True, True),
        ("lazy", 2, False, True),
        ("best", 3, False, True),
    ]
    assert exports[0]["return_type"]["Sum"]["variants"][0]["algebraic_type"] == {"Ref": player_ref}
    assert exports[1]["return_type"] == {"Array": {"Ref": module.views["scores"].row_ref}}
    assert all(v["params"] == {"elements": []} for v in exports)
    module.raw_v9_bsatn()  # encodes


def test_adding_changing_and_removing_views_is_an_automatic_update():
    before = load_source(PLAYER).module_def
    after = load_source(PLAYER + GOOD_VIEWS).module_def
    added = plan_migration(before, after)
    assert added.is_automatic and not added.changes_schema and not added.disconnects_clients
    assert sorted(s.subject for s in added.steps if s.kind == "add_view") == ["best", "lazy", "me", "scores"]
    # as upstream's auto_migrate_view: removing a view, or changing its rows' columns, disconnects clients;
    # adding one, or returning the same rows in another shape, does not
    removed = plan_migration(after, before)
    assert removed.is_automatic and [s.kind for s in removed.steps] == ["remove_view"] * 4 + [
        "disconnect_all_clients"
    ]
    changed = load_source(PLAYER + GOOD_VIEWS.replace("-> Score:", "-> Optional[Score]:")).module_def
    plan = plan_migration(after, changed)
    assert plan.is_automatic and [(s.kind, s.subject) for s in plan.steps] == [("change_view", "best")]
    assert not plan.disconnects_clients
    retyped = load_source(
        PLAYER + GOOD_VIEWS.replace("@anonymous_view", "@view").replace("AnonymousViewContext", "ViewContext")
    ).module_def
    replaced = plan_migration(after, retyped)
    assert replaced.disconnects_clients and ("replace_view", "scores") in [
        (s.kind, s.subject) for s in replaced.steps
    ]


def _run(db: Db, name: str, sender=ALICE) -> list[tuple]:
    tx = db.datastore.begin_tx()
    try:
        rows, _ = call_view(db.loaded.module_def.views[name], db.runtime, tx, sender, DATABASE)
    finally:
        tx.release()
    return rows


def test_views_read_per_caller_and_report_the_tables_they_read():
    db = Db(load_source(PLAYER + GOOD_VIEWS))
    db.call("join", 7, sender=ALICE)
    db.call("join", 30, sender=BOB)
    assert _run(db, "me", ALICE) == [(ALICE, 7)] and _run(db, "me", BOB) == [(BOB, 30)]
    assert sorted(_run(db, "scores")) == [(7,), (30,)] and _run(db, "best") == [(30,)]
    assert sorted(_run(db, "lazy")) == sorted(
        [(ALICE, 7), (BOB, 30)]
    )  # a generator, read while ctx.db is bound
    tx = db.datastore.begin_tx()
    try:
        _, read = call_view(db.loaded.module_def.views["me"], db.runtime, tx, ALICE, DATABASE)
        player = tx.table_id("player")
        (pk_index,) = [i.index_id for i in tx.schema(player).indexes]
        assert read.tables == frozenset() and read.keys == {
            (player, pk_index, ALICE)
        }  # one key, not the table
        _, read = call_view(db.loaded.module_def.views["scores"], db.runtime, tx, ALICE, DATABASE)
        assert read.tables == {player} and not read.keys
    finally:
        tx.release()


def test_writes_in_a_view_are_refused_and_wrong_results_are_explained():
    db = Db(
        load_source(
            PLAYER
            + """
        @view(public=True)
        def sneaky(ctx: ViewContext) -> list[Player]:
            ctx.db.player.insert(Player(identity=ctx.sender, score=1))
            return []

        @view(public=True)
        def deleter(ctx: ViewContext) -> list[Player]:
            ctx.db.player.identity.delete(ctx.sender)
            return []

        @view(public=True)
        def wrong(ctx: ViewContext) -> list[Player]:
            return [Score(value=1)]

        @view(public=True)
        def missing(ctx: ViewContext) -> Player:
            return None
        """
        )
    )
    db.call("join", 5)
    for name in ("sneaky", "deleter"):
        with pytest.raises(ReadOnlyError, match=f"view `{name}` cannot write to the database"):
            _run(db, name)
    assert db.rows("player") == [(ALICE, 5)]
    with pytest.raises(ViewError, match="returned a row that is not a Player"):
        _run(db, "wrong")
    with pytest.raises(ViewError, match=r"declared to return one Player.*Optional\[Player\]"):
        _run(db, "missing")
    # the reducer handles are untouched by a view's failure
    db.call("join", 9, sender=BOB)
    assert len(db.rows("player")) == 2


KEYED_VIEW = """
        @view(public=True, primary_key="score")
        def by_score(ctx: ViewContext) -> list[Player]:
            return list(ctx.db.player.iter())
        """


def test_a_view_primary_key_is_a_column_position_that_bindings_see():
    module = load_source(PLAYER + KEYED_VIEW).module_def
    assert module.views["by_score"].primary_key == 1
    # V9 has no field for it: only this project's generator asks for it (event_flags), as a table's key
    (plain,) = [e["View"] for e in module.raw_v9_json()["misc_exports"] if "View" in e]
    (extra,) = [e["View"] for e in module.raw_v9_json(event_flags=True)["misc_exports"] if "View" in e]
    assert "primary_key" not in plain and extra["primary_key"] == [1]
    schema = ModuleSchema.from_raw_v9(module.raw_v9_json(event_flags=True))
    assert schema.tables["by_score"].primary_key == 1  # the SDK's cache pairs a delete and an insert by it
    unkeyed = ModuleSchema.from_raw_v9(
        load_source(PLAYER + KEYED_VIEW.replace(', primary_key="score"', "")).module_def.raw_v9_json(
            event_flags=True
        )
    )
    assert unkeyed.tables["by_score"].primary_key is None


def test_giving_a_view_a_primary_key_replaces_it_and_disconnects_clients():
    """Upstream's auto_migrate_view: a changed primary key is AddView + RemoveView + DisconnectAllUsers."""
    unkeyed = load_source(PLAYER + KEYED_VIEW.replace(', primary_key="score"', "")).module_def
    keyed = load_source(PLAYER + KEYED_VIEW).module_def
    for before, after in ((unkeyed, keyed), (keyed, unkeyed)):
        plan = plan_migration(before, after)
        assert plan.is_automatic and plan.disconnects_clients
        assert ("replace_view", "by_score") in [(s.kind, s.subject) for s in plan.steps]
    assert plan_migration(keyed, keyed).steps == []


def _st_view(db: Db) -> tuple[list[tuple], list[tuple]]:
    tx = db.datastore.begin_tx()
    try:
        views = sorted(tx.scan(ds.ST_VIEW_ID))
        columns = sorted(
            (row[0], row[1], row[2], type_from_bsatn(row[3])) for row in tx.scan(ds.ST_VIEW_COLUMN_ID)
        )
        params = list(tx.scan(ds.ST_VIEW_PARAM_ID))
    finally:
        tx.release()
    assert params == []  # views take no parameters
    return views, columns


def _migrate(db: Db, old: Any, source: str) -> Any:
    """Apply the automatic migration from module definition ``old`` to ``source`` to ``db``; the new definition."""
    new = load_source(source).module_def
    tx = db.datastore.begin_mut_tx()
    apply_migration(tx, plan_migration(old, new))
    db.datastore.commit(tx)
    return new


def test_st_view_describes_the_views_with_table_ids_no_table_takes():
    db = Db(load_source(PLAYER + GOOD_VIEWS))
    views, columns = _st_view(db)
    tx = db.datastore.begin_tx()
    try:
        player_table = tx.table_id("player")
    finally:
        tx.release()
    # view ids from st_view's own sequence, table ids after the module's tables', in declaration order
    assert views == [
        (4096, "me", player_table + 1, True, False),
        (4097, "scores", player_table + 2, True, True),
        (4098, "lazy", player_table + 3, False, True),
        (4099, "best", player_table + 4, False, True),
    ]
    assert columns[:2] == [(4096, 0, "identity", IDENTITY), (4096, 1, "score", U32)]
    assert (4097, 0, "value", U32) in columns and len(columns) == 2 + 1 + 2 + 1


def test_st_view_follows_updates():
    """As upstream's migration steps: a view whose access changes keeps its ids (UpdateView), one whose key
    changes is replaced (new ids), a removed view's rows go, and a later table never takes a view's id."""
    unkeyed = PLAYER + KEYED_VIEW.replace(', primary_key="score"', "")
    db = Db(load_source(unkeyed))
    (before,), _ = _st_view(db)
    module = _migrate(
        db,
        db.loaded.module_def,
        unkeyed.replace("public=True)\n        def by_score", "public=False)\n        def by_score"),
    )
    (hidden,), _ = _st_view(db)
    assert hidden == (*before[:3], False, False)
    module = _migrate(db, module, PLAYER + KEYED_VIEW)
    (keyed,), columns = _st_view(db)
    assert keyed == (before[0] + 1, "by_score", before[2] + 1, True, False)
    assert [c[:3] for c in columns] == [(keyed[0], 0, "identity"), (keyed[0], 1, "score")]
    _migrate(db, module, PLAYER + "\n        @table\n        class Later:\n            x: u32\n")
    assert _st_view(db) == ([], [])
    tx = db.datastore.begin_tx()
    try:
        assert tx.table_id("later") == keyed[2] + 1
    finally:
        tx.release()
