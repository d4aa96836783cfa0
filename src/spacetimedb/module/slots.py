"""The slot through which a runtime's handles reach the transaction of the call in progress.

Kept apart from the handles (``index_handles``, compiled with the hot path): ``ThreadBoundTxSlot`` replaces the
slot's attribute by a property, which a compiled class cannot have overridden, so the slots stay interpreted.
"""

from __future__ import annotations

import threading
from typing import Any

from .errors import NoTransactionError


class _NoTransaction:
    """What the slot holds between calls: any use says clearly that there is no reducer call."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        raise NoTransactionError("ctx.db can only be used while a reducer runs (no transaction is active)")


# what a slot holds outside any call
NO_TX: Any = _NoTransaction()


class TxSlot:
    """The transaction of the reducer call in progress, shared by all handles of a runtime."""

    __slots__ = ("tx",)

    def __init__(self) -> None:
        self.tx: Any = NO_TX


class ThreadBoundTxSlot(TxSlot):
    """A slot whose transaction only the thread that set it sees. The runtime of procedures' transactions uses
    it: a procedure runs on a thread of its own, and a table handle it kept from ``with_tx`` must not reach
    into a transaction running on the host thread."""

    __slots__ = ("_owner", "_tx")

    def __init__(self) -> None:
        self._tx: Any = NO_TX
        self._owner = 0

    @property
    def tx(self) -> Any:
        return self._tx if threading.get_ident() == self._owner else NO_TX

    @tx.setter
    def tx(self, tx: Any) -> None:
        self._owner = threading.get_ident()
        self._tx = tx
