"""A module with views, for the view tests: per-caller items over a private table, shared views, a view that
can be made to raise and one that tries to write."""

from typing import Annotated

from spacetimedb import (
    AnonymousViewContext,
    AutoInc,
    Identity,
    Index,
    PrimaryKey,
    ReducerContext,
    ViewContext,
    anonymous_view,
    reducer,
    table,
    type,
    u32,
    u64,
    view,
)


@table(public=False)
class Item:
    id: Annotated[u64, PrimaryKey, AutoInc]
    owner: Annotated[Identity, Index.btree]
    name: str
    price: u32


@table(public=True)
class Switch:
    id: Annotated[u32, PrimaryKey]
    broken: bool


@type
class Totals:
    count: u64
    total: u64


@view(public=True)
def my_items(ctx: ViewContext) -> list[Item]:
    return list(ctx.db.item.owner.filter(ctx.sender))


@view(public=True, primary_key="id")  # clients see a price change of the cheapest item as an update
def my_cheapest(ctx: ViewContext) -> Item | None:
    mine = list(ctx.db.item.owner.filter(ctx.sender))
    return min(mine, key=lambda item: (item.price, item.id)) if mine else None


@anonymous_view(public=True)
def expensive_items(ctx: AnonymousViewContext) -> list[Item]:
    return [item for item in ctx.db.item.iter() if item.price >= 100]


@anonymous_view(public=True)
def totals(ctx: AnonymousViewContext) -> Totals:
    prices = [item.price for item in ctx.db.item.iter()]
    return Totals(count=len(prices), total=sum(prices))


@anonymous_view(public=True)
def fragile(ctx: AnonymousViewContext) -> list[Switch]:
    switches = list(ctx.db.switch.iter())
    if any(s.broken for s in switches):
        raise ValueError("the fragile view broke")
    return switches


@anonymous_view(public=True)
def stubborn(ctx: AnonymousViewContext) -> list[Switch]:
    while any(s.broken for s in ctx.db.switch.iter()):  # runs until its time budget stops it
        pass
    return list(ctx.db.switch.iter())


@view(public=True)
def sneaky_writer(ctx: ViewContext) -> Item | None:
    return ctx.db.item.insert(Item(id=0, owner=ctx.sender, name="stolen", price=1))


@reducer
def add_item(ctx: ReducerContext, name: str, price: u32) -> None:
    ctx.db.item.insert(Item(id=0, owner=ctx.sender, name=name, price=price))


@reducer
def set_price(ctx: ReducerContext, item_id: u64, price: u32) -> None:
    item = ctx.db.item.id.find(item_id)
    if item is None or item.owner != ctx.sender:
        raise LookupError(f"no item {item_id} of yours")
    item.price = price
    ctx.db.item.id.update(item)


@reducer
def remove_item(ctx: ReducerContext, item_id: u64) -> None:
    ctx.db.item.id.delete(item_id)


@reducer
def set_switch(ctx: ReducerContext, broken: bool) -> None:
    row = ctx.db.switch.id.find(1)
    if row is None:
        ctx.db.switch.insert(Switch(id=1, broken=broken))
    else:
        row.broken = broken
        ctx.db.switch.id.update(row)
