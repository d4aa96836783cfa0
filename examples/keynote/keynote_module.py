"""The keynote bank-transfer module: accounts with balances, and a transfer reducer that moves money between
two of them in one transaction (the headline benchmark of systems like this one)."""

from typing import Annotated

from spacetimedb import PrimaryKey, ReducerContext, i64, reducer, table, u32


@table(name="accounts", public=True)
class Account:
    id: Annotated[u32, PrimaryKey]
    balance: i64


@reducer
def seed(ctx: ReducerContext, n: u32, initial_balance: i64) -> None:
    """Replace every account with ``n`` accounts numbered 0..n-1 holding ``initial_balance`` each."""
    accounts = ctx.db.accounts
    for account in accounts.iter():
        accounts.delete(account)
    for account_id in range(n):
        accounts.insert(Account(id=account_id, balance=initial_balance))


@reducer
def transfer(ctx: ReducerContext, from_id: u32, to_id: u32, amount: i64) -> None:
    if from_id == to_id:
        raise ValueError("same_account")
    if amount <= 0:
        raise ValueError("invalid_amount")
    by_id = ctx.db.accounts.id
    source = by_id.find(from_id)
    target = by_id.find(to_id)
    if source is None or target is None:
        raise LookupError("account_not_found")
    if source.balance < amount:
        raise ValueError("insufficient_funds")
    source.balance -= amount
    target.balance += amount
    by_id.update(source)
    by_id.update(target)


@reducer
def noop(ctx: ReducerContext) -> None:
    """Does nothing: measures the cost of a call itself."""
