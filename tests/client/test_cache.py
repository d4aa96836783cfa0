"""The client cache rules (TypeScript SDK's table_cache.ts), driven with encoded rows, no server."""

from __future__ import annotations

from typing import Any

import pytest

from spacetimedb.client.cache import DELETE, INSERT, UPDATE, TableCache
from spacetimedb.client.schema import ModuleSchema, python_name
from spacetimedb.codegen import module_def_json_from_path
from spacetimedb.sats import Identity

from .helpers import CHAT_MODULE, ROOT


@pytest.fixture(scope="module")
def chat() -> ModuleSchema:
    return ModuleSchema.from_raw_v9(module_def_json_from_path(CHAT_MODULE))


@pytest.fixture(scope="module")
def sink() -> ModuleSchema:
    return ModuleSchema.from_raw_v9(module_def_json_from_path(ROOT / "tests" / "codegen" / "kitchen_sink.py"))


def ops(cache: TableCache, *changes: tuple[str, tuple[Any, ...]]) -> list[tuple[str, bytes, Any]]:
    """Operations as the connection makes them: (kind, row bytes, decoded row)."""
    out = []
    for kind, row in changes:
        raw = cache.schema.encode_row(row)
        ((_, decoded),) = cache.schema.decode_rows(raw)
        out.append((kind, raw, decoded))
    return out


def fired(pending: list[Any]) -> list[tuple[str, tuple[Any, ...]]]:
    return [(kind, tuple(tuple(a) for a in args)) for kind, _, args in pending]


def user(n: int, name: str | None, online: bool = True) -> tuple[Any, ...]:
    return (Identity(n), name, online)


def test_primary_key_update_and_reference_counts(chat: ModuleSchema) -> None:
    cache = TableCache(chat.table("user"))
    # the same row from two query sets: stored once, one insert callback, counted twice
    assert fired(cache.apply(ops(cache, (INSERT, user(1, "a")), (INSERT, user(1, "a"))))) == [
        (INSERT, (user(1, "a"),))
    ]
    assert cache.rows[Identity(1)][1] == 2
    # delete + insert of the same key in one message: an update; the count moves by inserts - deletes
    pending = cache.apply(ops(cache, (INSERT, user(1, "b")), (DELETE, user(1, "a")), (DELETE, user(1, "a"))))
    assert fired(pending) == [(UPDATE, (user(1, "a"), user(1, "b")))]
    assert cache.rows[Identity(1)][1] == 1
    assert cache.find("identity", Identity(1)).name == "b"
    # the last occurrence leaving deletes it
    assert fired(cache.apply(ops(cache, (DELETE, user(1, "b"))))) == [(DELETE, (user(1, "b"),))]
    assert len(cache) == 0 and cache.find("identity", Identity(1)) is None
    # deleting what is not there changes nothing (and is logged)
    assert cache.apply(ops(cache, (DELETE, user(2, "x")))) == []


def test_rows_without_primary_key_are_keyed_by_their_bytes(sink: ModuleSchema) -> None:
    cache = TableCache(sink.table("tag"))
    cache.apply(ops(cache, (INSERT, ("x", 1)), (INSERT, ("x", 1)), (INSERT, ("y", 1))))
    assert sorted(tuple(r) for r in cache) == [("x", 1), ("y", 1)]
    # one occurrence of ("x", 1) leaves: still there; no update semantics without a primary key
    assert cache.apply(ops(cache, (DELETE, ("x", 1)))) == []
    assert fired(cache.apply(ops(cache, (INSERT, ("x", 2)), (DELETE, ("x", 1))))) == [
        (INSERT, (("x", 2),)),
        (DELETE, (("x", 1),)),
    ]
    assert sorted(tuple(r) for r in cache) == [("x", 2), ("y", 1)]


def test_unique_index_changes_hands_within_one_message(sink: ModuleSchema) -> None:
    table = sink.table("user_profile")
    cache = TableCache(table)

    def profile(pk: int, nick: str, level: int) -> tuple[Any, ...]:
        row = list(table.make_row(_blank_profile(sink)))
        row[0], row[2], row[3] = pk, nick, level
        return tuple(row)

    cache.apply(ops(cache, (INSERT, profile(1, "neo", 3)), (INSERT, profile(2, "trinity", 3))))
    # in one transaction "neo" moves from row 1 to row 2: the insert of 2 is seen before the delete of 1
    cache.apply(
        ops(
            cache,
            (INSERT, profile(2, "neo", 4)),
            (DELETE, profile(2, "trinity", 3)),
            (DELETE, profile(1, "neo", 3)),
        )
    )
    assert cache.find("nick_name", "neo")[0] == 2
    assert cache.find("nick_name", "trinity") is None
    assert [r[0] for r in cache.filter("level", 4)] == [2]
    assert cache.filter("level", 3) == []
    assert [r[0] for r in cache.filter("by_level_nick", (4, "neo"))] == [2]
    assert [r[0] for r in cache.filter("by_level_nick", (4,))] == [2]


def test_event_rows_fire_inserts_only(chat: ModuleSchema) -> None:
    cache = TableCache(chat.table("message"))
    assert [kind for kind, _, _ in cache.events(["a", "b"])] == [INSERT, INSERT]
    assert len(cache) == 0


def test_untyped_rows_are_namedtuples_of_their_columns(chat: ModuleSchema) -> None:
    row = chat.table("user").make_row((Identity(7), None, False))
    assert row._fields == ("identity", "name", "online") and row.online is False
    assert [python_name(n) for n in ("from", "_x", "1st", "ok")] == ["from_", "f_x", "f1st", "ok"]
    reducer = chat.reducer("send_message")
    assert reducer.bind(("hi",), {}) == ("hi",) == reducer.bind((), {"text": "hi"})
    with pytest.raises(TypeError):
        reducer.bind((), {})
    with pytest.raises(TypeError):
        reducer.bind(("a",), {"text": "b"})


def _blank_profile(sink: ModuleSchema) -> tuple[Any, ...]:
    from spacetimedb.sats import ConnectionId, SumValue, Timestamp

    return (
        0,
        Identity(1),
        "",
        0,
        (0, 0),
        SumValue(0, ()),
        SumValue(0, (1.0,)),
        (),
        b"",
        None,
        None,
        0,
        Timestamp(0),
        ConnectionId(1),
    )
