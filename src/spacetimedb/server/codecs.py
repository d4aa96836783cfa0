"""How a session speaks its protocol: decoding client messages, dispatching them, encoding server messages.

``V2Codec`` serves ``v2.bsatn.spacetimedb`` and ``v3.bsatn.spacetimedb`` (the same messages; v3 batches several
per frame). ``V1JsonCodec`` serves ``v1.json.spacetimedb`` (text frames, SATS-JSON), the legacy protocol simple
clients and scripts use; its non-callers always get ``TransactionUpdateLight`` (rows only, no reducer details).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Protocol

from spacetimedb.host.module_host import COMMITTED, FAILED, CallOutcome
from spacetimedb.protocol import v2
from spacetimedb.sats import ConnectionId, DecodeError, Identity, Timestamp, codec
from spacetimedb.sats.json import json_codec
from spacetimedb.subscription import TableDelta, TableRows

from .bridge import query_set_updates_v2

if TYPE_CHECKING:
    from .session import Session

PROTOCOL_V1_JSON = "v1.json.spacetimedb"
# the legacy v1 `Subscribe` replaces all of a client's subscriptions; it lives in this query set
LEGACY_QUERY_SET = 0xFFFF_FFFF


class ProtocolCodec(Protocol):
    name: str
    binary: bool
    batched: bool

    def decode_client(self, data: bytes | str) -> list[Any]: ...
    def dispatch(self, message: Any, session: Session) -> None: ...
    def initial_connection(self, identity: Identity, connection_id: ConnectionId, token: str) -> Any: ...
    def reducer_result(
        self, request_id: int, reducer: str, args: Any, outcome: CallOutcome, session: Session
    ) -> Any: ...
    def reducer_failed(
        self, request_id: int, reducer: str, args: Any, message: str, session: Session
    ) -> Any: ...
    def transaction_update(self, updates: list[tuple[int, TableDelta]]) -> Any: ...
    def subscription_error(self, request_id: int | None, query_set_id: int, message: str) -> Any: ...
    def subscribe_applied(
        self, request_id: int, query_set_id: int, tables: list[TableRows], multi: bool
    ) -> Any: ...
    def unsubscribe_applied(
        self, request_id: int, query_set_id: int, tables: list[TableRows] | None
    ) -> Any: ...
    def one_off_result(self, request_id: Any, tables: list[TableRows] | None, error: str | None) -> Any: ...


def _pairs(tables: list[TableRows] | None) -> list[tuple[str, list[bytes]]] | None:
    return None if tables is None else [(t.table_name, t.rows) for t in tables]


class V2Codec:
    binary = True

    def __init__(self, batched: bool) -> None:
        self.batched = batched
        self.name = v2.PROTOCOL_V3 if batched else v2.PROTOCOL_V2

    def decode_client(self, data: bytes | str) -> list[v2.ClientMessage]:
        assert isinstance(data, bytes | bytearray | memoryview)
        return v2.decode_client_messages(data, self.batched)

    def dispatch(self, message: v2.ClientMessage, session: Session) -> None:
        tag, fields = message.tag, message.fields
        if tag == v2.CALL_REDUCER:
            request_id, flags, reducer, args = fields
            if flags != 0:
                raise DecodeError(f"invalid call reducer flags {flags}")
            session.call_reducer(request_id, reducer, args)
        elif tag == v2.SUBSCRIBE:
            request_id, (query_set_id,), queries = fields
            session.subscribe(request_id, query_set_id, list(queries))
        elif tag == v2.UNSUBSCRIBE:
            request_id, (query_set_id,), flags = fields
            session.unsubscribe(request_id, query_set_id, flags == v2.UNSUBSCRIBE_SEND_DROPPED_ROWS)
        elif tag == v2.ONE_OFF_QUERY:
            request_id, query = fields
            session.one_off_query(request_id, query)
        elif tag == v2.CALL_PROCEDURE:
            request_id = fields[0]
            session.push_now(
                v2.procedure_internal_error(
                    request_id, Timestamp.now(), "procedures are not supported by this server"
                )
            )

    def initial_connection(self, identity: Identity, connection_id: ConnectionId, token: str) -> bytes:
        return v2.initial_connection(identity, connection_id, token)

    def reducer_result(
        self, request_id: int, reducer: str, args: Any, outcome: CallOutcome, session: Session
    ) -> bytes:
        if outcome.status == COMMITTED:
            return v2.reducer_result_ok(
                request_id, outcome.timestamp, query_set_updates_v2(outcome.caller_updates)
            )
        if outcome.status == FAILED:
            return v2.reducer_result_err(request_id, outcome.timestamp, outcome.message or "")
        return v2.reducer_result_internal_error(
            request_id, outcome.timestamp, outcome.message or outcome.status
        )

    def reducer_failed(
        self, request_id: int, reducer: str, args: Any, message: str, session: Session
    ) -> bytes:
        return v2.reducer_result_internal_error(request_id, Timestamp.now(), message)

    def transaction_update(self, updates: list[tuple[int, TableDelta]]) -> bytes:
        return v2.transaction_update_message(query_set_updates_v2(updates))

    def subscription_error(self, request_id: int | None, query_set_id: int, message: str) -> bytes:
        return v2.subscription_error(request_id, query_set_id, message)

    def subscribe_applied(
        self, request_id: int, query_set_id: int, tables: list[TableRows], multi: bool
    ) -> bytes:
        return v2.subscribe_applied(request_id, query_set_id, _pairs(tables) or [])

    def unsubscribe_applied(
        self, request_id: int, query_set_id: int, tables: list[TableRows] | None
    ) -> bytes:
        return v2.unsubscribe_applied(request_id, query_set_id, _pairs(tables))

    def one_off_result(self, request_id: Any, tables: list[TableRows] | None, error: str | None) -> bytes:
        return v2.one_off_query_result(request_id, _pairs(tables), error)


# ---- v1 JSON ------------------------------------------------------------------------------------------------------


def _option(value: Any) -> dict[str, Any]:
    return {"none": []} if value is None else {"some": value}


def _rows_json(row_type: Any, rows: list[bytes]) -> list[str]:
    """Rows as the v1 JSON protocol carries them: each row's typed JSON, as a string."""
    decode = codec(row_type).decode
    to_json = json_codec(row_type).to_json
    return [json.dumps(to_json(decode(row)), separators=(",", ":")) for row in rows]


def _table_update_json(
    table_id: int, table_name: str, row_type: Any, inserts: list[bytes], deletes: list[bytes]
) -> dict[str, Any]:
    return {
        "table_id": table_id,
        "table_name": table_name,
        "num_rows": len(inserts) + len(deletes),
        "updates": [{"deletes": _rows_json(row_type, deletes), "inserts": _rows_json(row_type, inserts)}],
    }


def _database_update(updates: list[tuple[int, TableDelta]]) -> dict[str, Any]:
    tables = []
    for _, delta in updates:
        cached = delta.cache.get("v1json")
        if cached is None:
            cached = delta.cache["v1json"] = _table_update_json(
                delta.table_id, delta.table_name, delta.row_type, delta.inserts, delta.deletes
            )
        tables.append(cached)
    return {"tables": tables}


def _rows_update(tables: list[TableRows] | None, deletes: bool = False) -> dict[str, Any]:
    out = []
    for table in tables or []:
        inserts, removed = ([], table.rows) if deletes else (table.rows, [])
        out.append(_table_update_json(table.table_id, table.table_name, table.row_type, inserts, removed))
    return {"tables": out}


def _dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


def _field(body: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    if name not in body or not isinstance(body[name], kind) or (isinstance(body[name], bool) and kind is int):
        raise DecodeError(f"missing or invalid field `{name}`")
    return body[name]


def _query_id(body: dict[str, Any]) -> int:
    query_id = _field(body, "query_id", (dict, int))
    if isinstance(query_id, dict):
        query_id = query_id.get("id")
    if not isinstance(query_id, int) or not 0 <= query_id < LEGACY_QUERY_SET:
        raise DecodeError("invalid `query_id`")
    return query_id


class V1JsonCodec:
    name = PROTOCOL_V1_JSON
    binary = False
    batched = False

    def decode_client(self, data: bytes | str) -> list[tuple[str, dict[str, Any]]]:
        try:
            parsed = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise DecodeError(f"invalid JSON: {exc}") from None
        if not isinstance(parsed, dict) or len(parsed) != 1:
            raise DecodeError("a message is a JSON object with exactly one key, the message type")
        ((kind, body),) = parsed.items()
        if not isinstance(body, dict):
            raise DecodeError(f"the body of `{kind}` must be an object")
        return [(kind, body)]

    def dispatch(self, message: tuple[str, dict[str, Any]], session: Session) -> None:
        kind, body = message
        if kind == "CallReducer":
            args_text = _field(body, "args", str)
            try:
                args = json.loads(args_text)
            except ValueError as exc:
                raise DecodeError(f"`args` is not JSON: {exc}") from None
            session.call_reducer(
                _field(body, "request_id", int), _field(body, "reducer", str), args, json_args=True
            )
        elif kind == "Subscribe":
            queries = _field(body, "query_strings", list)
            request_id = _field(body, "request_id", int)
            if LEGACY_QUERY_SET in session.host.subscriptions.subscriptions(session.client_id):
                session.unsubscribe(request_id, LEGACY_QUERY_SET, False)
            session.subscribe(request_id, LEGACY_QUERY_SET, [str(q) for q in queries], multi=True)
        elif kind == "SubscribeSingle":
            session.subscribe(
                _field(body, "request_id", int), _query_id(body), [_field(body, "query", str)], multi=False
            )
        elif kind == "SubscribeMulti":
            queries = _field(body, "query_strings", list)
            session.subscribe(
                _field(body, "request_id", int), _query_id(body), [str(q) for q in queries], multi=True
            )
        elif kind in ("Unsubscribe", "UnsubscribeMulti"):
            session.unsubscribe(_field(body, "request_id", int), _query_id(body), True)
        elif kind == "OneOffQuery":
            session.one_off_query(body.get("message_id", ""), _field(body, "query_string", str))
        elif kind == "CallProcedure":
            session.push_now(
                _dumps(
                    {
                        "ProcedureResult": {
                            "status": {"InternalError": "procedures are not supported by this server"},
                            "timestamp": {"__timestamp_micros_since_unix_epoch__": Timestamp.now().micros},
                            "total_host_execution_duration": {"__time_duration_micros__": 0},
                            "request_id": body.get("request_id", 0),
                        }
                    }
                )
            )
        else:
            raise DecodeError(f"unknown message type `{kind}`")

    def initial_connection(self, identity: Identity, connection_id: ConnectionId, token: str) -> str:
        return _dumps(
            {
                "IdentityToken": {
                    "identity": {"__identity__": "0x" + identity.to_hex()},
                    "token": token,
                    "connection_id": {"__connection_id__": connection_id.value},
                }
            }
        )

    def _transaction_update(
        self,
        request_id: int,
        reducer: str,
        args: Any,
        status: dict[str, Any],
        timestamp: Timestamp,
        micros: int,
        session: Session,
    ) -> str:
        return _dumps(
            {
                "TransactionUpdate": {
                    "status": status,
                    "timestamp": {"__timestamp_micros_since_unix_epoch__": timestamp.micros},
                    "caller_identity": {"__identity__": "0x" + session.identity.to_hex()},
                    "caller_connection_id": {"__connection_id__": session.connection_id.value},
                    "reducer_call": {
                        "reducer_name": reducer,
                        "reducer_id": 0,
                        "args": json.dumps(args, separators=(",", ":")),
                        "request_id": request_id,
                    },
                    "energy_quanta_used": {"quanta": 0},
                    "total_host_execution_duration": {"__time_duration_micros__": micros},
                }
            }
        )

    def reducer_result(
        self, request_id: int, reducer: str, args: Any, outcome: CallOutcome, session: Session
    ) -> str:
        if outcome.status == COMMITTED:
            status: dict[str, Any] = {"Committed": _database_update(outcome.caller_updates)}
        elif outcome.status == "out_of_budget":
            status = {"OutOfEnergy": []}
        else:
            status = {"Failed": outcome.message or outcome.status}
        return self._transaction_update(
            request_id, reducer, args, status, outcome.timestamp, outcome.duration_micros, session
        )

    def reducer_failed(self, request_id: int, reducer: str, args: Any, message: str, session: Session) -> str:
        return self._transaction_update(
            request_id, reducer, args, {"Failed": message}, Timestamp.now(), 0, session
        )

    def transaction_update(self, updates: list[tuple[int, TableDelta]]) -> str:
        return _dumps({"TransactionUpdateLight": {"request_id": 0, "update": _database_update(updates)}})

    def subscription_error(self, request_id: int | None, query_set_id: int, message: str) -> str:
        query_id = None if query_set_id == LEGACY_QUERY_SET else {"id": query_set_id}
        return _dumps(
            {
                "SubscriptionError": {
                    "total_host_execution_duration_micros": 0,
                    "request_id": _option(request_id),
                    "query_id": _option(query_id),
                    "table_id": _option(None),
                    "error": message,
                }
            }
        )

    def subscribe_applied(
        self, request_id: int, query_set_id: int, tables: list[TableRows], multi: bool
    ) -> str:
        update = _rows_update(tables)
        if query_set_id == LEGACY_QUERY_SET:
            return _dumps(
                {
                    "InitialSubscription": {
                        "database_update": update,
                        "request_id": request_id,
                        "total_host_execution_duration": {"__time_duration_micros__": 0},
                    }
                }
            )
        if multi:
            return _dumps(
                {
                    "SubscribeMultiApplied": {
                        "request_id": request_id,
                        "total_host_execution_duration_micros": 0,
                        "query_id": {"id": query_set_id},
                        "update": update,
                    }
                }
            )
        table = (
            update["tables"][0]
            if update["tables"]
            else {"table_id": 0, "table_name": "", "num_rows": 0, "updates": []}
        )
        return _dumps(
            {
                "SubscribeApplied": {
                    "request_id": request_id,
                    "total_host_execution_duration_micros": 0,
                    "query_id": {"id": query_set_id},
                    "rows": {
                        "table_id": table["table_id"],
                        "table_name": table["table_name"],
                        "table_rows": table,
                    },
                }
            }
        )

    def unsubscribe_applied(self, request_id: int, query_set_id: int, tables: list[TableRows] | None) -> str:
        return _dumps(
            {
                "UnsubscribeMultiApplied": {
                    "request_id": request_id,
                    "total_host_execution_duration_micros": 0,
                    "query_id": {"id": query_set_id},
                    "update": _rows_update(tables, deletes=True),
                }
            }
        )

    def one_off_result(self, request_id: Any, tables: list[TableRows] | None, error: str | None) -> str:
        return _dumps(
            {
                "OneOffQueryResponse": {
                    "message_id": request_id,
                    "error": _option(error),
                    "tables": [
                        {"table_name": t.table_name, "rows": _rows_json(t.row_type, t.rows)}
                        for t in tables or []
                    ],
                    "total_host_execution_duration": {"__time_duration_micros__": 0},
                }
            }
        )
