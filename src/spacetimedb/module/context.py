"""The contexts module functions get as their first argument: ``ReducerContext`` and ``ProcedureContext``, and the
caller's credentials they carry (``AuthCtx``, ``ctx.sender_auth``)."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from spacetimedb.sats import ConnectionId, Identity, Timestamp

T = TypeVar("T")
DbT = TypeVar("DbT")  # the type of ``ctx.db``: a module's generated ``Db`` (``<module>_db.pyi``), else Any

# Who runs ``volatile_nonatomic_schedule_immediate`` calls on this thread: the module host sets it on its
# thread (as it sets the log sink), so a reducer reaches its own database's queue. The arguments are canonical
# values (a Python module) or the BSATN of the reducer's parameters (a foreign module).
ImmediateScheduler = Callable[[str, tuple[Any, ...] | bytes], None]
_immediate = threading.local()


def set_immediate_scheduler(scheduler: ImmediateScheduler | None) -> ImmediateScheduler | None:
    """Run this thread's ``volatile_nonatomic_schedule_immediate`` calls with ``scheduler``; returns the previous."""
    previous: ImmediateScheduler | None = getattr(_immediate, "scheduler", None)
    _immediate.scheduler = scheduler
    return previous


def current_immediate_scheduler() -> ImmediateScheduler | None:
    """This thread's scheduler for ``volatile_nonatomic_schedule_immediate`` calls (None off the host thread)."""
    scheduler: ImmediateScheduler | None = getattr(_immediate, "scheduler", None)
    return scheduler


class AuthCtx:
    """``ctx.sender_auth``: what the caller proved about itself.

    - ``is_internal``: the call comes from the database itself (a scheduled reducer, ``init``), not a client;
    - ``has_jwt``: the caller presented a token (every client call does);
    - ``issuer``, ``subject``, ``audience``: the token's ``iss``, ``sub`` and ``aud`` claims;
    - ``claims``: every claim of the token as a dict; ``payload``: the token's payload as JSON text.
    """

    __slots__ = ("_claims", "is_internal", "payload")

    def __init__(self, payload: str | None, is_internal: bool = False) -> None:
        self.payload = payload
        self.is_internal = is_internal
        self._claims: dict[str, Any] | None = None

    @classmethod
    def internal(cls) -> AuthCtx:
        return cls(None, is_internal=True)

    @property
    def has_jwt(self) -> bool:
        return self.payload is not None

    @property
    def claims(self) -> dict[str, Any]:
        if self._claims is None:  # parsed on first use: most calls never look
            parsed = json.loads(self.payload) if self.payload else {}
            self._claims = parsed if isinstance(parsed, dict) else {}
        return dict(self._claims)

    @property
    def issuer(self) -> str | None:
        return _text(self.claims.get("iss"))

    @property
    def subject(self) -> str | None:
        return _text(self.claims.get("sub"))

    @property
    def audience(self) -> list[str]:
        audience = self.claims.get("aud")
        if isinstance(audience, str):
            return [audience]
        return [a for a in audience if isinstance(a, str)] if isinstance(audience, list) else []

    def __repr__(self) -> str:
        if self.is_internal:
            return "AuthCtx(internal)"
        return f"AuthCtx(issuer={self.issuer!r}, subject={self.subject!r})"


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


INTERNAL_AUTH = AuthCtx.internal()
NO_JWT = AuthCtx(None)


class SeededRng:
    """``rng``: a ``random.Random`` seeded from the context's ``timestamp``, so a call is deterministic for a given
    time."""

    __slots__ = ("_rng",)
    _rng: random.Random | None  # None until first used (set so by the subclass's __init__)
    timestamp: Timestamp

    @property
    def rng(self) -> random.Random:
        # created on first use: seeding a Mersenne Twister costs more than most reducers
        if self._rng is None:
            self._rng = random.Random(self.timestamp.micros)
        return self._rng


class _CallContext(SeededRng):
    """What every module function's context has: the caller, the time, the database's identity, a seeded rng."""

    __slots__ = ("connection_id", "identity", "sender", "sender_auth", "timestamp")

    def __init__(
        self,
        sender: Identity,
        connection_id: ConnectionId | None,
        timestamp: Timestamp,
        identity: Identity,
        sender_auth: AuthCtx,
    ) -> None:
        self.sender = sender
        self.connection_id = connection_id
        self.timestamp = timestamp
        self.identity = identity
        self.sender_auth = sender_auth
        self._rng = None


class ReducerContext(_CallContext, Generic[DbT]):
    """The caller, the time and the database of one reducer call.

    - ``sender``: the identity of the caller (the database's own identity for scheduled reducers);
    - ``connection_id``: the caller's connection, or None (HTTP calls without one, scheduled and init calls);
    - ``timestamp``: when the call started;
    - ``db``: the module's tables, ``ctx.db.<table>``;
    - ``identity``: the database's own identity;
    - ``sender_auth``: the caller's credentials (``AuthCtx``);
    - ``rng``: a ``random.Random`` seeded from ``timestamp``, so a call is deterministic for a given time.

    ``ReducerContext[Db]``, with the ``Db`` that ``spacetime generate --lang python-module`` writes, types
    ``ctx.db`` for editors and type checkers; a bare ``ReducerContext`` leaves it ``Any``.
    """

    __slots__ = ("db",)

    def __init__(
        self,
        sender: Identity,
        connection_id: ConnectionId | None,
        timestamp: Timestamp,
        db: DbT,
        identity: Identity,
        sender_auth: AuthCtx = INTERNAL_AUTH,
    ) -> None:
        # ``_CallContext.__init__``'s fields set here, not through ``super()``: every reducer call makes one, and a
        # second Python frame costs more than the assignments
        self.sender = sender
        self.connection_id = connection_id
        self.timestamp = timestamp
        self.identity = identity
        self.sender_auth = sender_auth
        self._rng = None
        self.db = db

    def volatile_nonatomic_schedule_immediate(self, reducer: str | Callable[..., Any], *args: Any) -> None:
        """Ask for ``reducer(*args)`` to run right after this call, in a transaction of its own, as a call from the
        database itself (upstream's macro of the same name). *Nonatomic*: it runs even if this call fails;
        *volatile*: a crash before it runs loses it. ``reducer`` is the function or its name."""
        if isinstance(reducer, str):
            name = reducer
        else:  # a @reducer function: the name it was declared under
            declared = getattr(reducer, "__stdb_reducer__", None)
            name = str(getattr(declared, "name", getattr(reducer, "__name__", reducer)))
        scheduler = current_immediate_scheduler()
        if scheduler is None:
            raise RuntimeError(
                "volatile_nonatomic_schedule_immediate works only in a reducer the database runs"
            )
        scheduler(name, args)

    def __repr__(self) -> str:
        return (
            f"ReducerContext(sender={self.sender!r}, connection_id={self.connection_id!r}, "
            f"timestamp={self.timestamp!r})"
        )


class OutsideTransaction:
    """``with_tx`` and the refused ``ctx.db`` of contexts that run outside any transaction (``_run_tx`` runs a
    function in a transaction of its own; ``_what`` names the kind of function in the refusal)."""

    __slots__ = ()
    _run_tx: Callable[[Callable[[ReducerContext[Any]], Any]], Any]
    _what = "a procedure"

    def with_tx(self, fn: Callable[[ReducerContext[Any]], T]) -> T:
        if not callable(fn):
            raise TypeError(f"with_tx takes a function of the transaction context, got {fn!r}")
        return self._run_tx(fn)  # type: ignore[no-any-return]  # _run_tx returns what fn returns

    @property
    def db(self) -> Any:
        raise AttributeError(
            f"{self._what} runs outside any transaction and has no ctx.db: "
            "use ctx.with_tx(lambda tx: tx.db.<table>...)"
        )


class ProcedureContext(_CallContext, OutsideTransaction):
    """What a procedure gets: the caller and the time as a reducer's context has them, no transaction.

    - ``with_tx(fn)``: run ``fn(tx)`` in a transaction (``tx`` is a ``ReducerContext`` with ``tx.db``); it commits
      when ``fn`` returns and rolls back when it raises (the exception then propagates). Returns what ``fn``
      returned. May be called several times; each call is its own transaction.
    - ``http``: outbound HTTP (``ctx.http.get(url)``, ``ctx.http.post(url, body=...)``), see ``HttpClient``.
    - ``sender``, ``connection_id``, ``timestamp``, ``identity``, ``sender_auth``, ``rng`` as on ``ReducerContext``.
    """

    __slots__ = ("_run_tx", "hold_tx", "http")

    def __init__(
        self,
        sender: Identity,
        connection_id: ConnectionId | None,
        timestamp: Timestamp,
        identity: Identity,
        sender_auth: AuthCtx,
        http: Any,
        run_tx: Callable[[Callable[[ReducerContext[Any]], Any]], Any],
        hold_tx: Callable[[], Any] | None = None,
    ) -> None:
        super().__init__(sender, connection_id, timestamp, identity, sender_auth)
        self.http = http
        self._run_tx = run_tx
        # for the host's foreign-module glue (SpacetimeDB's procedure ABI begins and commits a transaction in
        # separate calls): a transaction held open for the procedure, with ``.tx``, ``.timestamp``,
        # ``.commit()`` and ``.abort()``
        self.hold_tx = hold_tx

    def __repr__(self) -> str:
        return f"ProcedureContext(sender={self.sender!r}, timestamp={self.timestamp!r})"
