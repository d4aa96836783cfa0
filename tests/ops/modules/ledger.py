"""A ledger for backup tests: transfers between accounts (the total never changes), each leaving a receipt that
names the writer and its call number."""

from typing import Annotated

from spacetimedb import PrimaryKey, ReducerContext, i64, log, reducer, table, u32, u64


@table(name="account", public=True)
class Account:
    id: Annotated[u32, PrimaryKey]
    balance: i64


@table(name="receipt", public=True)
class Receipt:
    id: Annotated[u64, PrimaryKey]
    writer: u32
    seq: u32
    from_id: u32
    to_id: u32
    amount: i64


@reducer
def seed(ctx: ReducerContext, accounts: u32, initial: i64) -> None:
    for account_id in range(accounts):
        ctx.db.account.insert(Account(id=account_id, balance=initial))


@reducer
def transfer(ctx: ReducerContext, writer: u32, seq: u32, from_id: u32, to_id: u32, amount: i64) -> None:
    by_id = ctx.db.account.id
    source, target = by_id.find(from_id), by_id.find(to_id)
    if source is None or target is None:
        raise LookupError("no such account")
    source.balance -= amount
    target.balance += amount
    by_id.update(source)
    by_id.update(target)
    ctx.db.receipt.insert(
        Receipt(id=(writer << 32) | seq, writer=writer, seq=seq, from_id=from_id, to_id=to_id, amount=amount)
    )
    log.debug(f"transfer {writer}/{seq}")
