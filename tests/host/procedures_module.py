"""A module with procedures, an event table and a reducer reading ``ctx.sender_auth`` (host and end-to-end tests)."""

from typing import Annotated

import spacetimedb
from spacetimedb import (
    AutoInc,
    HttpError,
    Identity,
    PrimaryKey,
    ProcedureContext,
    ReducerContext,
    ScheduleAt,
    Timestamp,
    ViewContext,
    procedure,
    reducer,
    table,
    type,
    u32,
    u64,
    view,
)


@table(public=True)
class Quote:
    id: Annotated[u64, PrimaryKey, AutoInc]
    text: str


@table(public=True, event=True)
class Damage:
    target: Identity
    amount: u32


@table(public=True)
class Caller:
    id: Annotated[u64, PrimaryKey, AutoInc]
    issuer: str
    subject: str
    internal: bool


@procedure
def add_two(ctx: ProcedureContext, lhs: u32, rhs: u32) -> u64:
    return lhs + rhs


@procedure
def fetch_quote(ctx: ProcedureContext, url: str) -> str:
    text = ctx.http.get(url, timeout=2.0).text()
    ctx.with_tx(lambda tx: tx.db.quote.insert(Quote(id=0, text=text)))
    return text


@procedure
def fetch_status(ctx: ProcedureContext, url: str, timeout: float) -> str:
    try:
        response = ctx.http.get(url, timeout=timeout)
    except HttpError as exc:
        return f"error: {exc}"
    return f"{response.status} {response.text()}"


@procedure
def insert_then_fail(ctx: ProcedureContext, text: str) -> u64:
    """A with_tx whose body raises rolls back alone; a second with_tx still commits."""

    def failing(tx: ReducerContext) -> None:
        tx.db.quote.insert(Quote(id=0, text="rolled back"))
        raise ValueError("changed my mind")

    try:
        ctx.with_tx(failing)
    except ValueError:
        pass
    ctx.with_tx(lambda tx: tx.db.quote.insert(Quote(id=0, text=text)))
    return ctx.with_tx(lambda tx: tx.db.quote.count())


@procedure
def crash(ctx: ProcedureContext) -> None:
    raise RuntimeError("procedure failed on purpose")


@procedure
def use_db(ctx: ProcedureContext) -> u64:
    return ctx.db.quote.count()  # a procedure has no ctx.db


@reducer
def hit(ctx: ReducerContext, target: Identity, amount: u32) -> None:
    ctx.db.damage.insert(Damage(target=target, amount=amount))


@reducer
def record_caller(ctx: ReducerContext) -> None:
    auth = ctx.sender_auth
    ctx.db.caller.insert(
        Caller(id=0, issuer=auth.issuer or "", subject=auth.subject or "", internal=auth.is_internal)
    )


@type
class Credentials:
    issuer: str
    has_jwt: bool


@view(public=True)
def my_credentials(ctx: ViewContext) -> list[Credentials]:
    auth = ctx.sender_auth
    return [Credentials(issuer=auth.issuer or "", has_jwt=auth.has_jwt)]


@procedure
def spin(ctx: ProcedureContext) -> None:
    while True:
        pass


@procedure
def stuck_in_c(ctx: ProcedureContext, seconds: float) -> None:
    import time

    time.sleep(seconds)  # one long C call: no exception can stop it, only the supervisor


@table(scheduled="ring", scheduled_at="at")
class Alarm:
    """A table that schedules a procedure (upstream allows reducers and procedures)."""

    scheduled_id: Annotated[u64, PrimaryKey, AutoInc]
    at: ScheduleAt
    text: str


@procedure
def ring(ctx: ProcedureContext, alarm: Alarm) -> None:
    spacetimedb.log.info(f"ringing: {alarm.text}")
    ctx.with_tx(lambda tx: tx.db.quote.insert(Quote(id=0, text=alarm.text)))


@reducer
def set_alarm(ctx: ReducerContext, text: str) -> None:
    ctx.db.alarm.insert(Alarm(scheduled_id=0, at=ScheduleAt.time(Timestamp.UNIX_EPOCH), text=text))
