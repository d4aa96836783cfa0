"""A database whose worker is up: the server's side of it (its clients, durable offset, requests, log followers).

Deliveries from the worker go to the client they name, among this database's own clients only, so a worker can
reach no other database's clients whatever it sends.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any, Protocol

from spacetimedb.protocol import seam
from spacetimedb.sats import ConnectionId, Identity

from .durable import DurableOffset
from .process import WorkerGone, WorkerProcess

_client_ids = itertools.count(1)
# a scrape does not wait longer for a busy database
METRICS_TIMEOUT_SECONDS = 2.0


class ClientSink(Protocol):
    """A client connection of the server, as a worker's messages reach it (event loop only)."""

    def deliver(self, offset: int | None, payload: bytes) -> None: ...
    def frames_done(self, count: int) -> None: ...
    def close(self, code: int, reason: str) -> None: ...
    def durable_advanced(self) -> None: ...


LogFollower = Callable[[str], None]


class HttpEgress(Protocol):
    """Performs a procedure's outbound HTTP request under the server's policy; failures are answers."""

    async def fetch(self, request: seam.HttpFetch) -> seam.HttpAnswer: ...


class RunningDatabase:
    def __init__(
        self, identity: Identity, worker: WorkerProcess, ready: seam.Ready, egress: HttpEgress | None = None
    ) -> None:
        self.identity = identity
        self.egress = egress
        self._fetches: set[asyncio.Task[None]] = set()
        self.worker = worker
        self.owner = ready.owner
        self.program_hash = ready.program_hash
        self.clients: dict[int, ClientSink] = {}
        self.durable = DurableOffset(ready.durable_offset, self._durable_advanced)
        self._accepting: dict[int, asyncio.Future[str | None]] = {}
        self._log_followers: list[LogFollower] = []
        self._confirmed_waiting: set[ClientSink] = set()
        self.death_reason: str | None = None
        self.on_writable: Callable[[], None] | None = (
            None  # the supervisor's: a read-only database writes again
        )
        worker.handler = self.on_message
        worker.on_death(self._on_death)

    @property
    def alive(self) -> bool:
        return self.worker.alive

    # -- clients ------------------------------------------------------------------------------------------------------

    async def connect(
        self,
        sink: ClientSink,
        identity: Identity,
        connection_id: ConnectionId,
        protocol: int,
        claims: str = "",
    ) -> tuple[int, str | None]:
        """Attach a client; returns its id and the module's refusal (None: accepted)."""
        client = next(_client_ids)
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._accepting[client] = future
        self.clients[client] = sink
        self.worker.work_sent()
        try:
            self.worker.send(seam.ConnectClient(client, identity, connection_id, protocol, claims))
            refusal = await future
        except BaseException:
            self.clients.pop(client, None)
            raise
        finally:
            if self._accepting.pop(client, None) is not None:
                self.worker.work_done(1)
        if refusal is not None:
            self.clients.pop(client, None)
        return client, refusal

    def frame(self, client: int, data: bytes) -> None:
        self.worker.send(seam.ClientFrame(client, data))
        self.worker.work_sent()

    def disconnect(self, client: int) -> None:
        sink = self.clients.pop(client, None)
        if sink is not None:
            self._confirmed_waiting.discard(sink)
            if self.worker.alive:
                try:
                    self.worker.send(seam.DisconnectClient(client))
                except WorkerGone:
                    pass

    def wait_for_durable(self, sink: ClientSink) -> None:
        """``sink`` holds messages until a later durable offset: wake it when one arrives."""
        self._confirmed_waiting.add(sink)

    def _durable_advanced(self, offset: int) -> None:
        waiting, self._confirmed_waiting = self._confirmed_waiting, set()
        for sink in waiting:
            sink.durable_advanced()

    # -- requests -----------------------------------------------------------------------------------------------------

    async def call(self, reducer: str, args_json: str, caller: Identity, claims: str = "") -> seam.CallDone:
        return await self.worker.request(
            lambda r: seam.CallReducerHttp(r, reducer, args_json, caller, claims), seam.CallDone
        )

    async def http_handler(
        self, method: str, path: str, uri: str, headers: list[tuple[str, str]], body: bytes
    ) -> seam.HandlerDone:
        """A request to the module's HTTP route ``path`` (``found`` false in the answer: it has none)."""
        names = tuple(name for name, _ in headers)
        values = tuple(value for _, value in headers)
        return await self.worker.request(
            lambda r: seam.CallHttpHandler(r, method, path, uri, names, values, body), seam.HandlerDone
        )

    async def sql(self, text: str, caller: Identity, claims: str = "") -> seam.SqlDone:
        return await self.worker.request(lambda r: seam.RunSql(r, text, caller, claims), seam.SqlDone)

    async def sql_typed(self, text: str, caller: Identity, params: tuple[seam.SqlParam, ...]) -> seam.SqlRows:
        """Run a script as ``sql`` does, with typed rows (for the PostgreSQL front end)."""
        return await self.worker.request(lambda r: seam.RunSqlTyped(r, text, caller, params), seam.SqlRows)

    async def describe_sql(self, text: str, caller: Identity) -> seam.SqlDescribed:
        """The parameter and result types of a one-statement script, for ``caller``."""
        return await self.worker.request(lambda r: seam.DescribeSql(r, text, caller), seam.SqlDescribed)

    async def schema(self, event_flags: bool = False, version: int = 9) -> str:
        """The module's RawModuleDef ``version`` (9 or 10) as JSON."""
        answer = await self.worker.request(
            lambda r: seam.GetSchema(r, event_flags, version), seam.SchemaAnswer
        )
        return answer.raw_json

    async def program(self) -> bytes:
        answer = await self.worker.request(seam.GetProgram, seam.ProgramAnswer)
        return answer.program

    async def update(self, program: bytes, allowance: float) -> seam.UpdateDone:
        """``allowance``: how long loading the new module may keep the worker from finishing other work."""
        return await self.worker.request(
            lambda r: seam.UpdateModule(r, program), seam.UpdateDone, allowance=allowance
        )

    async def tail_log(self, lines: int | None) -> list[str]:
        answer = await self.worker.request(lambda r: seam.TailLog(r, lines), seam.LogAnswer)
        return list(answer.lines)

    async def stats(self) -> seam.DatabaseStats:
        answer = await self.worker.request(seam.GetStats, seam.StatsAnswer)
        return answer.stats

    async def metrics(self) -> seam.DatabaseMetrics:
        answer = await self.worker.request(
            seam.GetMetrics, seam.MetricsAnswer, timeout=METRICS_TIMEOUT_SECONDS
        )
        return answer.metrics

    def follow_log(self, follower: LogFollower) -> None:
        self._log_followers.append(follower)
        if len(self._log_followers) == 1:
            self.worker.send(seam.FollowLog(True))

    def unfollow_log(self, follower: LogFollower) -> None:
        if follower in self._log_followers:
            self._log_followers.remove(follower)
            if not self._log_followers and self.worker.alive:
                try:
                    self.worker.send(seam.FollowLog(False))
                except WorkerGone:
                    pass

    # -- the worker's messages ------------------------------------------------------------------------------------------

    def on_message(self, message: Any) -> None:
        match message:
            case seam.Deliveries():
                clients = self.clients
                for item in message.items:
                    sink = clients.get(item.client)
                    if sink is not None:
                        sink.deliver(item.offset, item.payload)
                for done in message.frames_done:
                    self.worker.work_done(done.count)
                    sink = clients.get(done.client)
                    if sink is not None:
                        sink.frames_done(done.count)
            case seam.Durable():
                if message.offset <= self.durable.value:
                    raise seam.SeamViolation(f"a durable offset that does not advance ({message.offset})")
                self.durable.advance(message.offset)
            case seam.CloseClient():
                sink = self.clients.get(message.client)
                if sink is not None:
                    sink.close(message.code, message.reason)
            case seam.ClientAccepted():
                future = self._accepting.pop(message.client, None)  # done as it is read (see ``request``)
                if future is not None:
                    self.worker.work_done(1)
                    if not future.done():
                        future.set_result(message.refusal)
            case seam.Writable():
                if self.on_writable is not None:
                    self.on_writable()
            case seam.HttpFetch():
                self._start_fetch(message)
            case seam.LogLines():
                for follower in list(self._log_followers):
                    for line in message.lines:
                        follower(line)
            case _:
                raise seam.SeamViolation(f"unexpected {type(message).__name__} from a running database")

    def _start_fetch(self, request: seam.HttpFetch) -> None:
        if len(request.header_names) != len(request.header_values):
            raise seam.SeamViolation("an HTTP request whose header names and values do not pair up")
        task = asyncio.get_running_loop().create_task(self._fetch(request))
        self._fetches.add(task)
        task.add_done_callback(self._fetches.discard)

    async def _fetch(self, request: seam.HttpFetch) -> None:
        self.worker.egress_started()
        try:
            if self.egress is None:
                answer = seam.HttpAnswer(
                    request.fetch, 0, (), (), b"", "this server makes no outbound HTTP requests"
                )
            else:
                answer = await self.egress.fetch(request)
        finally:
            self.worker.egress_finished()
        if self.worker.alive:
            try:
                self.worker.send(answer)
            except WorkerGone:
                pass

    def _on_death(self, reason: str) -> None:
        for task in self._fetches:
            task.cancel()
        self.death_reason = reason
        disk_full = self.worker.disk_full
        self.durable.fail(reason, disk_full)
        for future in self._accepting.values():
            if not future.done():
                future.set_exception(WorkerGone(reason, disk_full))
        clients, self.clients = self.clients, {}
        for sink in clients.values():
            sink.close(1011, f"the database stopped: {reason}")
        for follower in list(self._log_followers):
            follower("")  # an empty line ends a follower's stream
        self._log_followers.clear()
