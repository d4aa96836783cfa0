"""One PostgreSQL client connection: startup and authentication, then the simple and extended query protocols.

Queries run in the database's worker exactly as ``POST /sql`` runs them (same visibility, row-level security,
ownership rules, limits and error texts); only the shape of the answer differs. An error answers with an
``ErrorResponse`` and leaves the connection usable; a message that breaks the protocol ends the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from spacetimedb.controller import (
    DatabaseNotFoundError,
    DatabaseUnavailableError,
    DurabilityLost,
    RequestFailed,
    WorkerGone,
)
from spacetimedb.protocol import seam
from spacetimedb.sats import DecodeError, Identity, ProductType, SatsError, codec
from spacetimedb.sats.meta import type_from_bsatn

from ..auth import AuthError
from . import catalog
from . import messages as m
from .types import TEXT, TYPE_SIZES, ParamError, columns_of, param_literal, type_oid

if TYPE_CHECKING:
    from spacetimedb.controller import RunningDatabase

    from ..app import Server

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_READ_AHEAD = 64  # messages read while earlier ones are served ...
MAX_READ_AHEAD_BYTES = 64 << 10  # ... each at most this big (a bigger one waits until the others are served)
MAX_KEPT_TYPES = 64
FLUSH_BYTES = 1 << 20  # answers buffered before they are written even without a Sync
MAX_STATEMENTS = 1000  # named prepared statements (and portals) one connection may keep

# SQLSTATE per class of SQL error (spacetimedb.sql.errors), as PostgreSQL would classify it
_SQLSTATES = {
    "SqlSyntaxError": "42601",
    "SqlUnsupportedError": "0A000",
    "SqlTypeError": "42804",
    "SqlPermissionError": "42501",
    "SqlLimitError": "54000",
    "SqlTimeoutError": "57014",
    "SqlExecutionError": "23505",
    "NoSpaceError": "53100",
}


class Refused(Exception):
    """An error for the client: ``ErrorResponse`` with this SQLSTATE and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def sqlstate(error_kind: str, message: str) -> str:
    if error_kind == "SqlNameError":
        return "42P01" if message.startswith("no such table") else "42703"
    if error_kind == "SqlExecutionError" and "unique" not in message.lower():
        return "22000"
    return _SQLSTATES.get(error_kind, "XX000")


@dataclass(slots=True)
class Prepared:
    """A parsed statement: its text, parameter types (as sent by the client, then as described) and result."""

    query: str
    param_oids: list[int]
    local: catalog.LocalAnswer | None = None
    row_type: ProductType | None = None


@dataclass(slots=True)
class Portal:
    statement: Prepared
    params: tuple[seam.SqlParam, ...]
    binary_results: list[int] = field(default_factory=list)

    def is_binary(self, column: int) -> bool:
        formats = self.binary_results
        if not formats:
            return False
        return bool(formats[0] if len(formats) == 1 else formats[column] if column < len(formats) else 0)


class PgSession:
    """Serves one connection until it ends; ``run`` never raises for anything the client does."""

    def __init__(self, server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.database: Identity | None = None
        self.database_name = ""
        self.caller: Identity | None = None
        self.application_name = ""
        self.statements: dict[str, Prepared] = {}
        self.portals: dict[str, Portal] = {}
        self.failed = False  # an extended-protocol error: skip messages until Sync
        self.out = bytearray()  # answers not yet written
        self.types: dict[bytes, ProductType] = {}  # decoded types by their BSATN
        self.hung_up = asyncio.Event()  # the client's side of the connection ended (or broke the protocol)

    async def run(self, startup_timeout: float) -> None:
        try:
            if await asyncio.wait_for(self.start(), startup_timeout):
                await self.serve()
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            pass
        except m.ProtocolViolation as violation:
            await self.fatal("08P01", str(violation))
        except Exception:
            log.exception("PG: a connection failed")
            await self.fatal("XX000", "internal error")
        finally:
            self.writer.close()

    async def fatal(self, code: str, text: str) -> None:
        try:
            self.writer.write(m.error_response(code, text, "FATAL"))
            await self.writer.drain()
        except (ConnectionError, RuntimeError):
            pass

    # -- startup ------------------------------------------------------------------------------------------------------

    async def start(self) -> bool:
        """Startup and authentication; False when the connection is to end (the client was told why)."""
        startup = await m.read_startup(self.reader)
        for _ in range(2):  # an SSL request, then a GSS one (or the reverse) at most
            if startup.code not in (m.SSL_REQUEST, m.GSSENC_REQUEST):
                break
            self.writer.write(b"N")  # no TLS here, as upstream's standalone server
            await self.writer.drain()
            startup = await m.read_startup(self.reader)
        if startup.code == m.CANCEL_REQUEST:
            return False  # queries here are not cancellable; the client expects no answer
        if startup.code != m.PROTOCOL_3_0:
            await self.fatal(
                "0A000", f"unsupported frontend protocol {startup.code >> 16}.{startup.code & 0xFFFF}"
            )
            return False
        params = startup.parameters
        self.application_name = params.get("application_name", "")
        self.database_name = params.get("database") or params.get("user") or ""
        if not self.database_name:
            await self.fatal("3D000", "a database name is required")
            return False
        self.database = self.server.resolve(self.database_name)
        if self.database is None:
            await self.fatal("3D000", f'database "{self.database_name}" does not exist')
            return False
        self.writer.write(m.AUTH_CLEARTEXT)
        await self.writer.drain()
        kind, body = await m.read_message(self.reader)
        if kind != b"p":
            raise m.ProtocolViolation("expected a password message")
        token = body.cstring()
        try:
            self.caller = self.authenticate(token)
        except AuthError as refused:
            await self.fatal("28P01", str(refused))
            return False
        self.writer.write(self.welcome())
        await self.writer.drain()
        return True

    def authenticate(self, token: str) -> Identity:
        """The caller: the token's identity, checked as the HTTP API checks it; no token, a new identity."""
        if not token:
            identity, _ = self.server.auth.mint()
            return identity
        return self.server.auth.validate(token).identity

    def welcome(self) -> bytes:
        parts = [m.AUTH_OK]
        for name, value in catalog.server_parameters(self.application_name).items():
            parts.append(m.parameter_status(name, value))
        parts.append(m.backend_key_data(secrets.randbits(31), secrets.randbits(31)))
        parts.append(m.ready_for_query())
        return b"".join(parts)

    # -- the message loop ----------------------------------------------------------------------------------------------

    async def serve(self) -> None:
        inbox: asyncio.Queue[tuple[bytes, m.Body] | BaseException] = asyncio.Queue(MAX_READ_AHEAD)
        reading = asyncio.ensure_future(self.read_ahead(inbox))
        try:
            await self.serve_messages(inbox)
        finally:
            reading.cancel()

    async def read_ahead(self, inbox: asyncio.Queue[tuple[bytes, m.Body] | BaseException]) -> None:
        """Read messages while earlier ones are served, so that a client hanging up is noticed mid-query."""
        try:
            while True:
                kind, body = await m.read_message(self.reader)
                await inbox.put((kind, body))
                if len(body.data) > MAX_READ_AHEAD_BYTES:
                    await inbox.join()  # nothing more is read until it is taken: a few big messages at most
        except (asyncio.IncompleteReadError, ConnectionError, m.ProtocolViolation) as exc:
            self.hung_up.set()
            await inbox.put(exc)

    async def serve_messages(self, inbox: asyncio.Queue[tuple[bytes, m.Body] | BaseException]) -> None:
        while True:
            item = await inbox.get()
            inbox.task_done()
            if isinstance(item, BaseException):
                raise item
            kind, body = item
            if kind == b"X":
                return
            if self.failed and kind not in (b"S", b"Q", b"H"):
                continue  # after an error the extended protocol skips to the next Sync
            try:
                await self.dispatch(kind, body)
            except Refused as refused:
                self.send(m.error_response(refused.code, str(refused)))
                if kind == b"Q":
                    self.send(m.ready_for_query())
                else:
                    self.failed = True
            if kind in (b"S", b"Q", b"H") or len(self.out) > FLUSH_BYTES:
                await self.flush()

    def send(self, message: bytes) -> None:
        """Queue a message; answers go out together at Sync, Flush or the end of a simple query (one write)."""
        self.out += message

    async def flush(self) -> None:
        if self.out:
            self.writer.write(bytes(self.out))
            self.out.clear()
        await self.writer.drain()

    async def dispatch(self, kind: bytes, body: m.Body) -> None:
        if kind == b"Q":
            query = body.cstring()
            body.end()
            await self.simple_query(query)
        elif kind == b"P":
            self.parse(body)
            await self.describe_if_needed(self.statements[self._named_statement])
            self.send(m.PARSE_COMPLETE)
        elif kind == b"B":
            self.bind(body)
            self.send(m.BIND_COMPLETE)
        elif kind == b"D":
            await self.describe(body)
        elif kind == b"E":
            await self.execute(body)
        elif kind == b"S":
            body.end()
            self.failed = False
            self.portals.pop("", None)
            self.send(m.ready_for_query())
        elif kind == b"H":
            body.end()
        elif kind == b"C":
            self.close(body)
        elif kind in (b"F", b"d", b"c", b"f"):
            raise Refused("0A000", "function calls and COPY are not supported")
        else:
            raise m.ProtocolViolation(f"an unknown message type {kind!r}")

    # -- simple query protocol ----------------------------------------------------------------------------------------

    async def simple_query(self, query: str) -> None:
        local = catalog.local_answer(query, self.application_name)
        if local is not None:
            self.send_local(local, with_description=True)
        elif catalog.reads_pg_catalog(query):
            self.send(m.error_response("0A000", catalog.CATALOG_UNSUPPORTED))
        else:
            done = await self.run_sql(query, ())
            if not done.results and done.error is None:
                self.send(m.EMPTY_QUERY)
            for result in done.results:
                schema, rows = self.decoded(result)
                if schema.elements:
                    columns = columns_of(schema, lambda _: False)
                    self.send(self.row_description(columns, binary=lambda _: False))
                self.send_rows(result, schema, rows, columns_of(schema, lambda _: False))
            if done.error is not None:
                self.send(m.error_response(sqlstate(done.error_kind, done.error), done.error))
        self.send(m.ready_for_query())

    def send_local(self, answer: catalog.LocalAnswer, with_description: bool) -> None:
        if answer.notice is not None:
            self.send(
                m.notice_response("25P01" if answer.tag != "BEGIN" else "25001", answer.notice, "WARNING")
            )
        if answer.column is not None:
            if with_description:
                self.send(m.row_description([(answer.column, TEXT, -1, 0)]))
            self.send(m.data_row([(answer.value or "").encode()]))
        self.send(m.command_complete(answer.tag))

    # -- extended query protocol -----------------------------------------------------------------------------------

    _named_statement = ""

    def parse(self, body: m.Body) -> None:
        name = body.cstring()
        query = body.cstring()
        oids = [body.int32() for _ in range(self._count(body, "parameter types"))]
        body.end()
        if name and name in self.statements:
            raise Refused("42P05", f'prepared statement "{name}" already exists')
        if catalog.reads_pg_catalog(query):
            raise Refused("0A000", catalog.CATALOG_UNSUPPORTED)
        if name and len(self.statements) >= MAX_STATEMENTS:
            raise Refused("54000", f"a connection may keep at most {MAX_STATEMENTS} prepared statements")
        self.statements[name] = Prepared(query, oids, catalog.local_answer(query, self.application_name))
        self._named_statement = name

    async def describe_if_needed(self, statement: Prepared) -> None:
        """Learn the statement's parameter and result types from the database (and check it, as PostgreSQL's
        Parse does)."""
        if statement.local is not None:
            return
        assert self.caller is not None
        with self.database_failures():
            running = await self.running()
            answer = await self.until_hang_up(running.describe_sql(statement.query, self.caller))
        if answer.error is not None:
            self.statements.pop(self._named_statement, None)
            raise Refused(sqlstate(answer.error_kind, answer.error), answer.error)
        described = self.decode_type(answer.param_types)
        given = statement.param_oids
        statement.param_oids = [
            given[i] if i < len(given) and given[i] else type_oid(element.type)
            for i, element in enumerate(described.elements)
        ]
        statement.row_type = None if answer.row_type is None else self.decode_type(answer.row_type)

    def bind(self, body: m.Body) -> None:
        portal_name = body.cstring()
        statement_name = body.cstring()
        formats = body.int16_list("parameter formats")
        values = [body.value() for _ in range(self._count(body, "parameters"))]
        results = body.int16_list("result formats")
        body.end()
        statement = self.statements.get(statement_name)
        if statement is None:
            raise Refused("26000", f'prepared statement "{statement_name}" does not exist')
        if len(values) != len(statement.param_oids) and statement.local is None:
            raise Refused(
                "08P01",
                f"bind message supplies {len(values)} parameters, but prepared statement "
                f'"{statement_name}" requires {len(statement.param_oids)}',
            )
        if len(formats) not in (0, 1, len(values)):
            raise Refused(
                "08P01", f"bind message has {len(formats)} parameter formats but {len(values)} parameters"
            )
        params = []
        for i, value in enumerate(values):
            binary = bool(formats[0] if len(formats) == 1 else formats[i] if formats else 0)
            try:
                kind, text = param_literal(value, binary, statement.param_oids[i])
            except ParamError as exc:
                raise Refused("22P03", f"parameter ${i + 1}: {exc}") from None
            params.append(seam.SqlParam(kind, text))
        if portal_name and len(self.portals) >= MAX_STATEMENTS:
            raise Refused("54000", f"a connection may keep at most {MAX_STATEMENTS} portals")
        self.portals[portal_name] = Portal(statement, tuple(params), results)

    async def describe(self, body: m.Body) -> None:
        what = body.byte()
        name = body.cstring()
        body.end()
        if what == b"S":
            statement = self.statements.get(name)
            if statement is None:
                raise Refused("26000", f'prepared statement "{name}" does not exist')
            self.send(m.parameter_description(statement.param_oids))
            self.describe_rows(statement, lambda _: False)
        elif what == b"P":
            portal = self.portals.get(name)
            if portal is None:
                raise Refused("34000", f'portal "{name}" does not exist')
            self.describe_rows(portal.statement, portal.is_binary)
        else:
            raise m.ProtocolViolation(f"Describe of an unknown kind {what!r}")

    def describe_rows(self, statement: Prepared, binary: Any) -> None:
        if statement.local is not None:
            if statement.local.column is None:
                self.send(m.NO_DATA)
            else:
                self.send(m.row_description([(statement.local.column, TEXT, -1, 0)]))
        elif statement.row_type is None:
            self.send(m.NO_DATA)
        else:
            self.send(self.row_description(columns_of(statement.row_type, binary), binary))

    async def execute(self, body: m.Body) -> None:
        name = body.cstring()
        body.int32()  # a row limit: every row is sent at once (results are bounded by the query limits)
        body.end()
        portal = self.portals.get(name)
        if portal is None:
            raise Refused("34000", f'portal "{name}" does not exist')
        statement = portal.statement
        if statement.local is not None:
            self.send_local(statement.local, with_description=False)
            return
        done = await self.run_sql(statement.query, portal.params)
        if done.error is not None:
            raise Refused(sqlstate(done.error_kind, done.error), done.error)
        if not done.results:
            self.send(m.EMPTY_QUERY)
        for result in done.results:
            schema, rows = self.decoded(result)
            self.send_rows(result, schema, rows, columns_of(schema, portal.is_binary))

    def close(self, body: m.Body) -> None:
        what = body.byte()
        name = body.cstring()
        body.end()
        if what == b"S":
            self.statements.pop(name, None)
        elif what == b"P":
            self.portals.pop(name, None)
        else:
            raise m.ProtocolViolation(f"Close of an unknown kind {what!r}")
        self.send(m.CLOSE_COMPLETE)

    # -- running and answering -----------------------------------------------------------------------------------------

    async def running(self) -> RunningDatabase:
        assert self.database is not None
        return await self.server.database(self.database)

    async def run_sql(self, query: str, params: tuple[seam.SqlParam, ...]) -> seam.SqlRows:
        assert self.caller is not None
        with self.database_failures():
            running = await self.running()
            done = await self.until_hang_up(running.sql_typed(query, self.caller, params))
            if done.offset is not None:
                await running.durable.wait(
                    done.offset
                )  # as /sql with ?confirmed: an answer means it is on disk
        return done

    async def until_hang_up(self, work: Awaitable[T]) -> T:
        """Await ``work``, but cancel it (the worker then stops the query) once the client has hung up."""
        task = asyncio.ensure_future(work)
        hung_up = asyncio.ensure_future(self.hung_up.wait())
        try:
            await asyncio.wait({task, hung_up}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            hung_up.cancel()
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        raise ConnectionResetError("the client hung up during a query")

    @contextlib.contextmanager
    def database_failures(self) -> Iterator[None]:
        """The database's own failures as errors for the client, in the words the HTTP API uses."""
        try:
            yield
        except DatabaseNotFoundError:
            raise Refused("3D000", f'database "{self.database_name}" does not exist') from None
        except DatabaseUnavailableError as exc:
            raise Refused("57P03", str(exc)) from None
        except (WorkerGone, DurabilityLost) as exc:
            if exc.disk_full:
                raise Refused("53100", f"no space left on device: {self.database_name}") from None
            raise Refused("57P01", f"the database stopped: {exc}; it restarts on its next use") from None
        except RequestFailed as exc:
            raise Refused("XX000", str(exc)) from None

    def decoded(self, result: seam.StatementRows) -> tuple[ProductType, list[Any]]:
        """The rows of one statement's answer (which came from an untrusted worker: checked while decoded)."""
        schema = self.decode_type(result.row_type)
        try:
            decode = codec(schema).decode
            return schema, [decode(row) for row in result.rows]
        except (DecodeError, SatsError, ValueError, RecursionError):
            raise Refused("XX000", "the database sent rows that do not decode") from None

    def decode_type(self, data: bytes) -> ProductType:
        """A result's or parameters' type (the same few come back again and again: they are kept)."""
        known = self.types.get(data)
        if known is not None:
            return known
        try:
            ty = type_from_bsatn(data)
        except (DecodeError, SatsError, ValueError, KeyError, IndexError, RecursionError):
            ty = None
        if not isinstance(ty, ProductType):
            raise Refused("XX000", "the database sent a type that does not decode")
        if len(self.types) >= MAX_KEPT_TYPES:
            self.types.clear()
        self.types[data] = ty
        return ty

    @staticmethod
    def row_description(columns: Sequence[Any], binary: Any) -> bytes:
        return m.row_description(
            (column.name, column.oid, TYPE_SIZES.get(column.oid, -1), 1 if binary(i) else 0)
            for i, column in enumerate(columns)
        )

    def send_rows(
        self, result: seam.StatementRows, schema: ProductType, rows: list[Any], columns: list[Any]
    ) -> None:
        encoders = [column.encode for column in columns]
        send = self.send
        for row in rows:
            send(m.data_row([enc(value) for enc, value in zip(encoders, row, strict=True)]))
        send(m.command_complete(command_tag(result, len(rows))))

    @staticmethod
    def _count(body: m.Body, what: str) -> int:
        count = body.int16()
        if count < 0:
            raise m.ProtocolViolation(f"a negative count of {what}")
        return count


def command_tag(result: seam.StatementRows, rows: int) -> str:
    """The CommandComplete tag PostgreSQL gives the statement (drivers read row counts from it)."""
    if result.command == "SELECT":
        return f"SELECT {rows}"
    if result.command == "INSERT":
        return f"INSERT 0 {result.rows_inserted}"
    if result.command == "UPDATE":
        return f"UPDATE {result.rows_updated}"
    if result.command == "DELETE":
        return f"DELETE {result.rows_deleted}"
    return result.command
