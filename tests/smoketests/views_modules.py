"""The modules of upstream's view smoketests (crates/smoketests/modules/views-*), rewritten in Python.

Upstream's query-builder views (``impl Query<T>``: ``ctx.from.user().r#where(...)``, semijoins) become views
that compute the same rows with index lookups and scans; what the tests assert is the rows, which are the same.
"""

from __future__ import annotations

PLAYER_STATE = """
from typing import Annotated, Optional
from spacetimedb import PrimaryKey, Index, ViewContext, view, table, u64

@table(name="player_state")
class PlayerState:
    id: Annotated[u64, PrimaryKey]
    level: Annotated[u64, Index.btree]
"""


def player_view(find_id: int | None, body: str = "") -> str:
    """views-auto-migrate (find 1), -updated (find 2), views-recovered (find 2), views-trapped (raises)."""
    statement = f"return ctx.db.player_state.id.find({find_id})" if find_id is not None else body
    return (
        PLAYER_STATE
        + f"""
@view(public=True)
def player(ctx: ViewContext) -> Optional[PlayerState]:
    {statement}
"""
    )


VIEWS_BASIC = (
    PLAYER_STATE
    + """
@view(public=True)
def player(ctx: ViewContext) -> Optional[PlayerState]:
    return ctx.db.player_state.id.find(0)
"""
)

VIEWS_AUTO_MIGRATE = player_view(1)
VIEWS_AUTO_MIGRATE_UPDATED = player_view(2)
VIEWS_RECOVERED = player_view(2)
VIEWS_TRAPPED = player_view(None, 'raise RuntimeError("This view is trapped")')
VIEWS_DROP_VIEW = PLAYER_STATE

VIEWS_BROKEN_NAMESPACE = """
from typing import Optional
from spacetimedb import ViewContext, view, table

@table(public=True)
class Person:
    name: str

@view(public=True)
def person(ctx: ViewContext) -> Optional[Person]:
    return None
"""

VIEWS_BROKEN_RETURN_TYPE = """
import enum
from typing import Optional
from spacetimedb import ViewContext, view

class ABC(enum.Enum):
    A = 0
    B = 1
    C = 2

@view(public=True)
def person(ctx: ViewContext) -> Optional[ABC]:
    return None
"""

VIEWS_SQL = """
from typing import Annotated, Optional
import spacetimedb
from spacetimedb import (AnonymousViewContext, Index, PrimaryKey, ReducerContext, ViewContext, anonymous_view,
                         reducer, table, view, u64)

@table(name="player_state")
class PlayerState:
    id: Annotated[u64, PrimaryKey]
    level: Annotated[u64, Index.btree]

@table(name="player_level")
class PlayerLevel:
    id: Annotated[u64, PrimaryKey]
    level: Annotated[u64, Index.btree]

@table(name="player_info", indexes=[Index.btree("age", "level", name="age_level_index")])
class PlayerInfo:
    id: Annotated[u64, PrimaryKey]
    age: u64
    level: u64

@reducer
def add_player_level(ctx: ReducerContext, id: u64, level: u64) -> None:
    ctx.db.player_level.insert(PlayerLevel(id=id, level=level))

@reducer
def set_player_state(ctx: ReducerContext, id: u64, level: u64) -> None:
    row = ctx.db.player_state.id.find(id)
    if row is None:
        ctx.db.player_state.insert(PlayerState(id=id, level=level))
    else:
        row.level = level
        ctx.db.player_state.id.update(row)

@anonymous_view(public=True)
def my_player_and_level(ctx: AnonymousViewContext) -> Optional[PlayerLevel]:
    return ctx.db.player_level.id.find(0)

@anonymous_view(public=True)
def player_and_level(ctx: AnonymousViewContext) -> list[PlayerLevel]:
    return list(ctx.db.player_level.level.filter(2))

@view(public=True)
def player(ctx: ViewContext) -> Optional[PlayerState]:
    spacetimedb.log.info("player view called")
    return ctx.db.player_state.id.find(42)

@view(public=True)
def player_none(ctx: ViewContext) -> Optional[PlayerState]:
    return None

@view(public=True)
def player_vec(ctx: ViewContext) -> list[PlayerState]:
    first = ctx.db.player_state.id.find(42)
    return [first, PlayerState(id=7, level=3)]

@view(name="player_info_multi_index", public=True)
def player_info_view(ctx: ViewContext) -> Optional[PlayerInfo]:
    spacetimedb.log.info("player_info called")
    return next(iter(ctx.db.player_info.age_level_index.filter((25, 7))), None)
"""

VIEWS_CALLABLE = """
from typing import Optional
from spacetimedb import ReducerContext, ViewContext, reducer, table, view, u8

@table(name="items", public=True)
class Item:
    value: u8

@view(public=True)
def bar(ctx: ViewContext) -> Optional[Item]:
    return Item(value=7)

@reducer
def baz(ctx: ReducerContext) -> None:
    item = bar(ViewContext(ctx.sender, ctx.db, ctx.identity))
    if item is not None:
        ctx.db.items.insert(item)
"""

VIEWS_SUBSCRIBE = """
from typing import Annotated, Optional
from spacetimedb import (Identity, PrimaryKey, ProcedureContext, ReducerContext, Unique, ViewContext, procedure,
                         reducer, table, view)

@table(name="player_state")
class PlayerState:
    identity: Annotated[Identity, PrimaryKey]
    name: Annotated[str, Unique]

@view(public=True)
def my_player(ctx: ViewContext) -> Optional[PlayerState]:
    return ctx.db.player_state.identity.find(ctx.sender)

@reducer
def insert_player(ctx: ReducerContext, name: str) -> None:
    ctx.db.player_state.insert(PlayerState(identity=ctx.sender, name=name))

@procedure
def insert_player_proc(ctx: ProcedureContext, name: str) -> None:
    sender = ctx.sender
    ctx.with_tx(lambda tx: tx.db.player_state.insert(PlayerState(identity=sender, name=name)))
"""

VIEWS_COUNT = """
from typing import Annotated, Optional
from spacetimedb import (AnonymousViewContext, PrimaryKey, ReducerContext, ViewContext, anonymous_view, reducer,
                         table, type, view, u32, u64)

@table(name="item")
class Item:
    id: Annotated[u32, PrimaryKey]
    value: u32

@type
class ItemCount:
    count: u64

@view(public=True)
def sender_table_count(ctx: ViewContext) -> Optional[ItemCount]:
    return ItemCount(count=ctx.db.item.count())

@anonymous_view(public=True)
def anon_table_count(ctx: AnonymousViewContext) -> Optional[ItemCount]:
    return ItemCount(count=ctx.db.item.count())

@reducer
def insert_item(ctx: ReducerContext, id: u32, value: u32) -> None:
    ctx.db.item.insert(Item(id=id, value=value))

@reducer
def replace_item(ctx: ReducerContext, id: u32, value: u32) -> None:
    ctx.db.item.id.delete(id)
    ctx.db.item.insert(Item(id=id, value=value))

@reducer
def delete_item(ctx: ReducerContext, id: u32) -> None:
    ctx.db.item.id.delete(id)
"""

VIEWS_QUERY = """
from typing import Annotated
from spacetimedb import (AnonymousViewContext, Identity, Index, PrimaryKey, ReducerContext, ViewContext,
                         anonymous_view, reducer, table, view, u8)

@table(name="user", public=True)
class User:
    identity: Annotated[u8, PrimaryKey]
    name: str
    online: bool

@table(name="person", public=True)
class Person:
    identity: Annotated[u8, PrimaryKey]
    name: str
    age: Annotated[u8, Index.btree]

@table(name="pk_join_lhs", public=True)
class LeftPkJoinSource:
    id: Annotated[u8, PrimaryKey]
    ok: bool
    identity: Annotated[Identity, Index.btree]

@table(name="pk_join_rhs", public=True)
class RightPkJoinSource:
    id: Annotated[u8, PrimaryKey]
    ok: bool
    identity: Annotated[Identity, Index.btree]

@reducer(lifecycle="init")
def init(ctx: ReducerContext) -> None:
    ctx.db.user.insert(User(identity=1, name="Alice", online=True))
    ctx.db.user.insert(User(identity=2, name="BOB", online=False))
    ctx.db.user.insert(User(identity=3, name="POP", online=False))
    ctx.db.person.insert(Person(identity=1, name="Alice", age=30))
    ctx.db.person.insert(Person(identity=2, name="BOB", age=20))

@view(public=True)
def online_users(ctx: ViewContext) -> list[User]:
    return [user for user in ctx.db.user.iter() if user.online]

@view(public=True)
def online_users_age(ctx: ViewContext) -> list[Person]:
    online = {user.identity for user in ctx.db.user.iter() if user.online}
    return [person for person in ctx.db.person.iter() if person.identity in online]

@view(name="offline_user_20_years_old", public=True)
def offline_user_in_twenties(ctx: ViewContext) -> list[User]:
    twenty = {person.identity for person in ctx.db.person.age.filter(20)}
    return [user for user in ctx.db.user.iter() if user.identity in twenty and not user.online]

@view(public=True)
def users_whos_age_is_known(ctx: ViewContext) -> list[User]:
    known = {person.identity for person in ctx.db.person.iter()}
    return [user for user in ctx.db.user.iter() if user.identity in known]

@view(public=True)
def users_who_are_above_20_and_below_30(ctx: ViewContext) -> list[Person]:
    return [person for person in ctx.db.person.iter() if 20 < person.age < 30]

@view(public=True)
def users_who_are_above_eq_20_and_below_eq_30(ctx: ViewContext) -> list[Person]:
    return [person for person in ctx.db.person.iter() if 20 <= person.age <= 30]

def replace(table, row) -> None:
    table.id.delete(row.id)
    table.insert(row)

@reducer
def update_pk_join_lhs(ctx: ReducerContext, id: u8, ok: bool) -> None:
    replace(ctx.db.pk_join_lhs, LeftPkJoinSource(id=id, ok=ok, identity=ctx.sender))

@reducer
def delete_pk_join_lhs(ctx: ReducerContext, id: u8) -> None:
    ctx.db.pk_join_lhs.id.delete(id)

@reducer
def update_pk_join_rhs(ctx: ReducerContext, id: u8, ok: bool) -> None:
    replace(ctx.db.pk_join_rhs, RightPkJoinSource(id=id, ok=ok, identity=ctx.sender))

@reducer
def delete_pk_join_rhs(ctx: ReducerContext, id: u8) -> None:
    ctx.db.pk_join_rhs.id.delete(id)

@anonymous_view(public=True)
def pk_join_lhs_view(ctx: AnonymousViewContext) -> list[LeftPkJoinSource]:
    return list(ctx.db.pk_join_lhs.iter())

@anonymous_view(public=True)
def pk_join_rhs_view(ctx: AnonymousViewContext) -> list[RightPkJoinSource]:
    return list(ctx.db.pk_join_rhs.iter())

@view(public=True)
def pk_join_lhs_sender_view(ctx: ViewContext) -> list[LeftPkJoinSource]:
    return list(ctx.db.pk_join_lhs.identity.filter(ctx.sender))

@view(public=True)
def pk_join_rhs_sender_view(ctx: ViewContext) -> list[RightPkJoinSource]:
    return list(ctx.db.pk_join_rhs.identity.filter(ctx.sender))
"""

_COUNTER = """
from typing import Annotated, Optional
from spacetimedb import PrimaryKey, ReducerContext, ViewContext, reducer, table, view, u64

@table(name="counter")
class Counter:
    id: Annotated[u64, PrimaryKey]
    value: u64

@table(name="marker")  # never read by the test: a row size other than counter's
class Marker:
    id: Annotated[u64, PrimaryKey]
    label: str

@reducer
def seed(ctx: ReducerContext) -> None:
    ctx.db.counter.insert(Counter(id=0, value=0))
    ctx.db.marker.insert(Marker(id=0, label="0"))

@reducer
def bump_counter(ctx: ReducerContext) -> None:
    counter = ctx.db.counter.id.find(0)
    ctx.db.counter.id.delete(0)
    counter.value += 1
    ctx.db.counter.insert(counter)
"""

_Z_COUNTER = """
@view(public=True)
def z_counter(ctx: ViewContext) -> Optional[Counter]:
    return ctx.db.counter.id.find(0)
"""

VIEWS_AUTO_MIGRATE_STABLE = _COUNTER + _Z_COUNTER
# a view declared before z_counter, so z_counter's position among the module's views changes
VIEWS_AUTO_MIGRATE_STABLE_UPDATED = (
    _COUNTER
    + """
@view(public=True)
def a_wrong_shape(ctx: ViewContext) -> Optional[Marker]:
    return ctx.db.marker.id.find(0)
"""
    + _Z_COUNTER
)

SWITCHED_LOG = "Calling or updating view `switched`"


def _read_set_module(source_table: str) -> str:
    return f"""
from typing import Annotated, Optional
import spacetimedb
from spacetimedb import PrimaryKey, ReducerContext, ViewContext, reducer, table, type, view, u64

@table(name="old", public=True)
class OldSource:
    id: Annotated[u64, PrimaryKey]

@table(name="new", public=True)
class NewSource:
    id: Annotated[u64, PrimaryKey]

@type
class Row:
    id: u64

@reducer
def seed(ctx: ReducerContext) -> None:
    ctx.db.old.insert(OldSource(id=0))
    ctx.db.new.insert(NewSource(id=0))

@reducer
def touch_old(ctx: ReducerContext) -> None:
    ctx.db.old.id.delete(0)

@view(public=True)
def switched(ctx: ViewContext) -> Optional[Row]:
    spacetimedb.log.info({SWITCHED_LOG!r})
    row = ctx.db.{source_table}.id.find(0)
    return None if row is None else Row(id=row.id)
"""


VIEWS_AUTO_MIGRATE_READ_SET = _read_set_module("old")
VIEWS_AUTO_MIGRATE_READ_SET_UPDATED = _read_set_module("new")

_LEVELS = """
from typing import Annotated
import spacetimedb
from spacetimedb import Index, PrimaryKey, ReducerContext, ViewContext, reducer, table, view, u64

@table(name="player_state", public=True)
class PlayerState:
    id: Annotated[u64, PrimaryKey]
    level: Annotated[u64, Index.btree]
"""

VIEWS_PRIMARY_KEY_AUTO_MIGRATE = (
    _LEVELS
    + """
@view(public=True)
def player(ctx: ViewContext) -> list[PlayerState]:
    return list(ctx.db.player_state.level.filter(spacetimedb.Range(0, None)))
"""
)

# upstream: `#[view(accessor = player, public, primary_key = id)]`
VIEWS_PRIMARY_KEY_AUTO_MIGRATE_UPDATED = (
    _LEVELS
    + """
@reducer(lifecycle="client_disconnected")
def identity_disconnected(ctx: ReducerContext) -> None:
    spacetimedb.log.info("VIEW PRIMARY KEY UPDATE: client disconnected")

@view(public=True, primary_key="id")
def player(ctx: ViewContext) -> list[PlayerState]:
    return list(ctx.db.player_state.level.filter(spacetimedb.Range(0, None)))
"""
)
