# quickstart_chat.py
# ruff: noqa
# fmt: off
# (kept exactly as the quickstart in the module API spec, hence no lint or formatting)
from typing import Annotated, Optional
from spacetimedb import (table, reducer, ReducerContext, Identity, Timestamp,
                         u64, PrimaryKey, AutoInc, Unique, Index)

@table(public=True)
class User:
    identity: Annotated[Identity, PrimaryKey]
    name: Optional[str]
    online: bool

@table(public=True, name="message", indexes=[Index.btree("sent")])
class Message:
    id: Annotated[u64, PrimaryKey, AutoInc]
    sender: Identity
    sent: Timestamp
    text: str

@reducer
def set_name(ctx: ReducerContext, name: str) -> None:
    if not name:
        raise ValueError("Names must not be empty")      # rolls back, reported to the caller
    user = ctx.db.user.identity.find(ctx.sender)
    if user is None:
        raise LookupError("Cannot set name for unknown user")
    user.name = name
    ctx.db.user.identity.update(user)

@reducer
def send_message(ctx: ReducerContext, text: str) -> None:
    ctx.db.message.insert(Message(id=0, sender=ctx.sender, sent=ctx.timestamp, text=text))

@reducer(lifecycle="client_connected")
def on_connect(ctx: ReducerContext) -> None:
    user = ctx.db.user.identity.find(ctx.sender)
    if user is None:
        ctx.db.user.insert(User(identity=ctx.sender, name=None, online=True))
    else:
        user.online = True
        ctx.db.user.identity.update(user)

@reducer(lifecycle="client_disconnected")
def on_disconnect(ctx: ReducerContext) -> None:
    user = ctx.db.user.identity.find(ctx.sender)
    if user is not None:
        user.online = False
        ctx.db.user.identity.update(user)
