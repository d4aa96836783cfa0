"""The quickstart chat module of docs/module-api.md, loaded from bytes and run against a real datastore."""

from __future__ import annotations

import pytest

from spacetimedb.module import INTERNAL_AUTH, ReducerContext, UniqueConstraintViolation, load_module
from spacetimedb.sats import ConnectionId, Identity, Timestamp

from .helpers import ALICE, BOB, QUICKSTART, Db


@pytest.fixture
def chat() -> Db:
    return Db(load_module(QUICKSTART.read_bytes(), name="quickstart_chat.py"))


def test_definition(chat: Db) -> None:
    module = chat.loaded.module_def
    assert list(module.tables) == ["user", "message"]
    assert [r.name for r in module.reducers.values()] == [
        "set_name",
        "send_message",
        "on_connect",
        "on_disconnect",
    ]
    assert module.lifecycle_reducer("client_connected").name == "on_connect"  # type: ignore[union-attr]
    assert module.lifecycle_reducer("client_disconnected").name == "on_disconnect"  # type: ignore[union-attr]
    assert module.lifecycle_reducer("init") is None
    message = module.table("message")
    assert message.public and message.primary_key == 0
    assert [(i.name, i.accessor_name, i.unique) for i in message.indexes] == [
        ("message_id_idx_btree", "id", True),
        ("message_sent_idx_btree", "sent", False),
    ]
    assert [s.name for s in message.sequences] == ["message_id_seq"]


def test_connect_creates_user_and_reconnect_sets_online(chat: Db) -> None:
    chat.call("on_connect", sender=ALICE, connection_id=ConnectionId(7))
    assert chat.rows("user") == [(ALICE, None, True)]
    chat.call("on_disconnect", sender=ALICE)
    assert chat.rows("user") == [(ALICE, None, False)]
    chat.call("on_connect", sender=ALICE)
    assert chat.rows("user") == [(ALICE, None, True)]
    chat.call("on_disconnect", sender=BOB)  # unknown user: nothing happens
    assert chat.rows("user") == [(ALICE, None, True)]


def test_set_name(chat: Db) -> None:
    chat.call("on_connect", sender=ALICE)
    chat.call("set_name", "alice", sender=ALICE)
    assert chat.rows("user") == [(ALICE, "alice", True)]
    with pytest.raises(ValueError, match="Names must not be empty"):
        chat.call("set_name", "", sender=ALICE)
    with pytest.raises(LookupError, match="unknown user"):
        chat.call("set_name", "bob", sender=BOB)
    assert chat.rows("user") == [(ALICE, "alice", True)]


def test_send_message_fills_auto_inc_ids(chat: Db) -> None:
    chat.call("send_message", "hello", sender=ALICE)
    chat.call("send_message", "hi", sender=BOB)
    rows = chat.rows("message")
    assert [(r[0], r[1], r[3]) for r in rows] == [(1, ALICE, "hello"), (2, BOB, "hi")]
    assert all(isinstance(r[2], Timestamp) for r in rows)
    assert rows[0][2] < rows[1][2]


def test_args_from_bsatn_and_json(chat: Db) -> None:
    runtime = chat.runtime
    args = runtime.decode_args("send_message", runtime.encode_args("send_message", ("bytes",)))
    assert args == ("bytes",)
    chat.call("send_message", *args)
    chat.call("send_message", *runtime.decode_json_args("send_message", ["array"]))
    chat.call("send_message", *runtime.decode_json_args("send_message", {"text": "object"}))
    assert [r[3] for r in chat.rows("message")] == ["bytes", "array", "object"]


def test_insert_returns_the_stored_row_and_unique_violation_leaves_tx_usable(chat: Db) -> None:
    with chat.with_ctx(sender=ALICE) as ctx:
        user_class = chat.loaded.module_def.table("user").row_class
        message_class = chat.loaded.module_def.table("message").row_class
        first = ctx.db.message.insert(message_class(id=0, sender=ALICE, sent=ctx.timestamp, text="a"))
        assert first.id == 1 and first.text == "a"
        ctx.db.user.insert(user_class(identity=ALICE, name="a", online=True))
        with pytest.raises(UniqueConstraintViolation, match="user"):
            ctx.db.user.insert(user_class(identity=ALICE, name="other", online=False))
        # the transaction is still usable after the violation
        ctx.db.user.insert(user_class(identity=BOB, name="b", online=False))
        assert ctx.db.user.count() == 2
        assert ctx.db.user.identity.find(ALICE).name == "a"
        assert sorted(u.name for u in ctx.db.user.iter()) == ["a", "b"]
        assert ctx.db.user.identity.delete(BOB) is True
        assert ctx.db.user.identity.delete(BOB) is False
        assert ctx.db.message.delete(first) is True
        assert ctx.db.message.count() == 0


def test_unique_violation_fails_the_reducer_and_rolls_back(chat: Db) -> None:
    source = QUICKSTART.read_text() + (
        "\n@reducer\ndef twice(ctx: ReducerContext) -> None:\n"
        "    ctx.db.message.insert(Message(id=5, sender=ctx.sender, sent=ctx.timestamp, text='x'))\n"
        "    ctx.db.message.insert(Message(id=5, sender=ctx.sender, sent=ctx.timestamp, text='y'))\n"
    )
    db = Db(load_module(source.encode()))
    with pytest.raises(UniqueConstraintViolation):
        db.call("twice")
    assert db.rows("message") == []


def test_handles_refuse_use_outside_a_call(chat: Db) -> None:
    from spacetimedb.module import NoTransactionError

    with pytest.raises(NoTransactionError, match="while a reducer runs"):
        chat.runtime.db.user.count()


def test_context_fields(chat: Db) -> None:
    with chat.with_ctx(sender=BOB) as ctx:
        assert ctx.sender == BOB and ctx.connection_id is None
        assert ctx.identity == Identity(0xDB)
        first = [ctx.rng.random() for _ in range(3)]
    # the same timestamp gives the same random sequence
    tx = chat.datastore.begin_mut_tx()
    again = chat.runtime.begin_call(tx, BOB, ConnectionId(0), ctx.timestamp, Identity(0xDB))
    assert again.connection_id is None  # the zero connection id means none
    assert [again.rng.random() for _ in range(3)] == first
    chat.runtime.end_call()
    chat.datastore.rollback(tx)


def test_reducer_context_sets_every_field_of_a_call_context() -> None:
    """``ReducerContext.__init__`` sets the fields of ``_CallContext`` itself (one frame per call, not two): a
    field added there and not here would be missing."""
    ctx = ReducerContext(Identity(1), None, Timestamp(5), "db", Identity(2), INTERNAL_AUTH)
    for cls in type(ctx).__mro__:
        for name in getattr(cls, "__slots__", ()):
            if name != "__weakref__":
                getattr(ctx, name)  # raises AttributeError if the constructor left it unset
    assert (ctx.sender, ctx.identity, ctx.timestamp, ctx.db) == (Identity(1), Identity(2), Timestamp(5), "db")
    assert ctx.rng.random() == ReducerContext(Identity(1), None, Timestamp(5), "db", Identity(2)).rng.random()
