"""A module's reducers and procedures as the host calls them: each function with its argument codecs, and the
start of a reducer call (its context, the transaction handed to the table handles).

Compiled with the transaction hot path (``spacetimedb.native``): the host calls these once per reducer call, and a
Python frame costs more than their work.
"""

from __future__ import annotations

from typing import Any, Final

from spacetimedb.datastore import MutTx
from spacetimedb.sats import (
    ConnectionId,
    DecodeError,
    EncodeError,
    Identity,
    ProductType,
    Timestamp,
    codec,
)
from spacetimedb.sats.json import json_codec

from .context import AuthCtx, ReducerContext
from .errors import ReducerArgsError
from .moduledef import ModuleDef, ProcedureDef, ReducerDef
from .slots import TxSlot

# (compiled, a ``Final`` global is read from a C static, any other from the module's dict: read per call)
_REDUCER_CONTEXT: Final = ReducerContext


def begin_reducer_call(
    slot: TxSlot,
    tx: MutTx,
    sender: Identity,
    connection_id: ConnectionId | None,
    timestamp: Timestamp,
    db: Any,
    database_identity: Identity,
    sender_auth: AuthCtx,
) -> ReducerContext[Any]:
    """Point the table handles (through ``slot``) at ``tx`` and make the call's context; the caller puts
    ``NO_TX`` back in the slot when the call ends."""
    slot.tx = tx
    if connection_id is not None and connection_id.value == 0:
        connection_id = None
    return _REDUCER_CONTEXT(sender, connection_id, timestamp, db, database_identity, sender_auth)


class ReducerFunction:
    """A reducer (or a procedure) with its argument codecs, ready to be called."""

    __slots__ = ("arg_codecs", "arg_json", "converters", "func", "kind", "name", "params_codec", "reducer")

    def __init__(self, reducer: ReducerDef | ProcedureDef, module: ModuleDef) -> None:
        typespace = module.typespace
        self.kind = "procedure" if isinstance(reducer, ProcedureDef) else "reducer"
        self.reducer = reducer
        self.name = reducer.name
        self.func = reducer.func
        self.params_codec = codec(reducer.params, typespace)
        self.arg_codecs = tuple(codec(e.type, typespace) for e in reducer.params.elements)
        self.arg_json = tuple(json_codec(e.type, typespace) for e in reducer.params.elements)
        converters = reducer.arg_from_canonical
        self.converters = converters if any(c is not None for c in converters) else None

    def decode_bsatn(self, data: bytes | bytearray | memoryview) -> tuple[Any, ...]:
        try:
            return self.params_codec.decode(data)  # type: ignore[no-any-return]  # codecs decode to Any; a product type decodes to a tuple
        except DecodeError:
            pass
        # decode argument by argument to name the one at fault
        pos = 0
        for name, arg_codec in zip(self.reducer.arg_names, self.arg_codecs, strict=True):
            try:
                _, pos = arg_codec.decode_from(data, pos)
            except DecodeError as exc:
                raise ReducerArgsError(self.name, str(exc), name, self.kind) from None
        raise ReducerArgsError(
            self.name, f"{len(data) - pos} unexpected byte(s) after the last argument", kind=self.kind
        )

    def decode_json(self, args: Any) -> tuple[Any, ...]:
        names = self.reducer.arg_names
        if isinstance(args, dict):
            unknown = sorted(set(args) - set(names))
            if unknown:
                # repr: a name from the caller's JSON may hold lone surrogates, which no message can carry
                raise ReducerArgsError(
                    self.name, f"unknown argument(s) {', '.join(map(repr, unknown))}", kind=self.kind
                )
            missing = [n for n in names if n not in args]
            if missing:
                raise ReducerArgsError(self.name, f"missing argument(s) {', '.join(missing)}", kind=self.kind)
            items = [args[n] for n in names]
        elif isinstance(args, list):
            if len(args) != len(names):
                raise ReducerArgsError(
                    self.name, f"expected {len(names)} argument(s), got {len(args)}", kind=self.kind
                )
            items = args
        else:
            raise ReducerArgsError(
                self.name,
                f"arguments must be a JSON array or object, got {type(args).__name__}",
                kind=self.kind,
            )
        values = []
        for name, item, arg_json in zip(names, items, self.arg_json, strict=True):
            try:
                values.append(arg_json.from_json(item))
            except DecodeError as exc:
                raise ReducerArgsError(self.name, str(exc), name, self.kind) from None
        return tuple(values)

    def encode_bsatn(self, args: tuple[Any, ...]) -> bytes:
        try:
            return self.params_codec.encode(args)
        except EncodeError as exc:
            raise ReducerArgsError(self.name, str(exc), kind=self.kind) from None

    def call(self, ctx: ReducerContext[Any], args: tuple[Any, ...]) -> Any:
        func = self.func  # (compiled, ``self.func(...)`` looks the attribute up by name, as a method)
        converters = self.converters
        if converters is None:
            # the usual counts spelled out: compiled, ``func(ctx, *args)`` builds a list and then a tuple of the
            # arguments, where a call with them listed passes them straight (a vectorcall)
            count = len(args)
            if count == 0:
                return func(ctx)
            if count == 1:
                return func(ctx, args[0])
            if count == 2:
                return func(ctx, args[0], args[1])
            if count == 3:
                return func(ctx, args[0], args[1], args[2])
            return func(ctx, *args)
        converted = [v if c is None else c(v) for c, v in zip(converters, args, strict=True)]
        return func(ctx, *converted)


class ProcedureCall(ReducerFunction):
    """A procedure with its argument and return value codecs."""

    __slots__ = ("procedure", "return_codec", "return_json", "to_canonical")

    def __init__(self, procedure: ProcedureDef, module: ModuleDef) -> None:
        super().__init__(procedure, module)
        self.procedure = procedure
        self.return_codec = codec(procedure.return_type, module.typespace)
        self.return_json = json_codec(procedure.return_type, module.typespace)
        self.to_canonical = procedure.return_to_canonical

    def canonical_return(self, value: Any) -> Any:
        """The canonical form of what the procedure returned; ``TypeError`` says why it does not fit."""
        if isinstance(self.procedure.return_type, ProductType) and not self.procedure.return_type.elements:
            if value is not None and value != ():
                raise TypeError(f"procedure `{self.name}` is declared `-> None` but returned {value!r}")
            return ()
        try:
            canonical = self.to_canonical(value) if self.to_canonical is not None else value
            self.return_codec.encode(canonical)  # checks it fits
        except (EncodeError, ValueError, TypeError, AttributeError) as exc:
            raise TypeError(
                f"procedure `{self.name}` returned {value!r}, which does not fit its return type: {exc}"
            ) from None
        return canonical

    def encode_return(self, canonical: Any) -> bytes:
        return self.return_codec.encode(canonical)

    def return_to_json(self, canonical: Any) -> Any:
        return self.return_json.to_json(canonical)

    def return_to_json_untyped(self, canonical: Any) -> Any:
        """The form of upstream's ``POST /call`` answer: products as arrays (``["World"]``)."""
        return self.return_json.to_json_untyped(canonical)
