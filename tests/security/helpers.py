"""Shared machinery of the security tests.

An *arena* is one server (short time budgets, a secret in its environment) with an honest *victim* database
published by its own owner. Hostile modules are published by other identities, each attack into a database of
its own, and every test checks the victim before and after the attack: its secret is intact (owner SQL), a call
to it commits, and a stranger cannot read its private table. ``VictimProbe`` keeps calling the victim while an
attack runs and times every call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from spacetimedb.sandbox import probe

from ..conftest import ServerProcess, start_server

MODULES = Path(__file__).resolve().parent / "modules"
REDUCER_BUDGET = 1.0
HARD_GRACE = 1.0
# the environment variable that holds the server's own secret (no module may ever see its value)
CANARY_VARIABLE = "SPACETIMEDB_SECURITY_CANARY"
# every request gives up after this long, so that a hung server fails a test instead of hanging it
REQUEST_TIMEOUT = 30.0
# victim calls take milliseconds; this generous bound only catches a victim stalled behind an attacker
VICTIM_MAX_LATENCY = 2.0
PROBE_INTERVAL = 0.05
PROBE_MAX_CALLS = 2000
# even an attack over in milliseconds gets this many victim calls around it
PROBE_MIN_CALLS = 5


def module_source(name: str) -> bytes:
    """A module under ``modules/``, as the bytes a publish sends."""
    return (MODULES / f"{name}.py").read_bytes()


# ---- who is who ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    identity: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True)
class Database:
    name: str
    identity: str
    owner: Account


@dataclass(frozen=True)
class Arena:
    server: ServerProcess
    data_dir: Path
    victim: Database
    secret: str  # the row the victim keeps in its private table
    stranger: Account  # owns nothing on this server
    canary: str  # the value of CANARY_VARIABLE in the server's environment
    reducer_budget: float
    load_budget: float  # for a module's top-level code
    hard_grace: float

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def hard_deadline(self) -> float:
        """How long a reducer may run before its worker is killed."""
        return self.reducer_budget + self.hard_grace

    @property
    def load_deadline(self) -> float:
        """How long a module's top-level code may run before its worker is killed."""
        return self.load_budget + self.hard_grace

    def database_dir(self, database: Database) -> Path:
        return self.data_dir / "databases" / database.identity


@contextlib.contextmanager
def running_arena(
    directory: Path,
    reducer_budget: float = REDUCER_BUDGET,
    hard_grace: float = HARD_GRACE,
    load_budget: float | None = None,
) -> Iterator[Arena]:
    """A server in ``directory`` with the victim published; stopped afterwards (killed if it will not stop).

    ``load_budget`` (for top-level code) defaults to the reducer budget, to keep attacks at load time short."""
    load_budget = reducer_budget if load_budget is None else load_budget
    support = probe()
    if not support.complete:
        pytest.skip("modules are only isolated with Landlock and seccomp: " + "; ".join(support.problems))
    canary = f"canary-{uuid.uuid4().hex}"
    server = start_server(
        directory / "data",
        extra_env={CANARY_VARIABLE: canary},
        extra_args=[
            *("--reducer-budget", f"{reducer_budget:g}"),
            *("--load-budget", f"{load_budget:g}"),
            *("--hard-grace", f"{hard_grace:g}"),
        ],
    )
    try:
        secret = f"secret-{uuid.uuid4().hex}"
        victim, stranger = asyncio.run(_publish_victim(server.url, secret))
        yield Arena(
            server,
            directory / "data",
            victim,
            secret,
            stranger,
            canary,
            reducer_budget,
            load_budget,
            hard_grace,
        )
    finally:
        try:
            server.stop(timeout=60)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(10)
        if server.process.stdout is not None:
            server.process.stdout.close()


async def _publish_victim(url: str, secret: str) -> tuple[Database, Account]:
    async with aiohttp.ClientSession() as http:
        client = Client(http, url)
        owner = await client.new_account()
        stranger = await client.new_account()
        source = module_source("victim").replace(b"__SECRET__", secret.encode())
        answer, _ = await client.publish("victim", source, owner)
        assert answer.status == 200, answer
        identity = json.loads(answer.text)["Success"]["database_identity"]
        return Database("victim", identity, owner), stranger


# ---- the HTTP API ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    text: str
    seconds: float
    headers: dict[str, str] = field(default_factory=dict, repr=False)


class Client:
    """The server's HTTP API as these tests use it; every request is bounded in time."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http = http
        self.url = url

    async def request(
        self,
        method: str,
        path: str,
        account: Account | None = None,
        timeout: float = REQUEST_TIMEOUT,
        **kwargs: Any,
    ) -> Answer:
        headers = dict(kwargs.pop("headers", {}))
        if account is not None:
            headers.update(account.headers)
        started = time.monotonic()
        async with self.http.request(
            method,
            self.url + path,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout),
            **kwargs,
        ) as response:
            text = await response.text()
            return Answer(response.status, text, time.monotonic() - started, dict(response.headers))

    async def new_account(self) -> Account:
        answer = await self.request("POST", "/v1/identity")
        assert answer.status == 200, answer
        body = json.loads(answer.text)
        return Account(body["identity"], body["token"])

    async def publish(
        self, name: str, source: bytes, account: Account | None = None, timeout: float = REQUEST_TIMEOUT
    ) -> tuple[Answer, Account | None]:
        """PUT the program; without ``account`` the server mints an identity, returned with the answer."""
        answer = await self.request("PUT", f"/v1/database/{name}", account, timeout, data=source)
        minted = answer.headers.get("spacetime-identity-token")
        if account is None and minted is not None:
            account = Account(answer.headers["spacetime-identity"], minted)
        return answer, account

    async def call(
        self,
        database: Database,
        reducer: str,
        *args: Any,
        account: Account | None = None,
        timeout: float = REQUEST_TIMEOUT,
    ) -> Answer:
        return await self.request(
            "POST",
            f"/v1/database/{database.name}/call/{reducer}",
            account or database.owner,
            timeout,
            json=list(args),
        )

    async def sql(self, database: Database, query: str, account: Account | None) -> Answer:
        return await self.request("POST", f"/v1/database/{database.name}/sql", account, data=query)

    async def rows(self, database: Database, query: str, account: Account | None = None) -> list[list[Any]]:
        answer = await self.sql(database, query, account or database.owner)
        assert answer.status == 200, (query, answer)
        return json.loads(answer.text)[0]["rows"]

    async def logs(self, database: Database, lines: int = 1000) -> list[dict[str, Any]]:
        answer = await self.request(
            "GET", f"/v1/database/{database.name}/logs?num_lines={lines}", database.owner
        )
        assert answer.status == 200, answer
        return [json.loads(line) for line in answer.text.splitlines() if line.strip()]

    async def ping(self, timeout: float = 5.0) -> Answer:
        return await self.request("GET", "/v1/ping", timeout=timeout)


@contextlib.asynccontextmanager
async def connect(arena: Arena) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession() as http:
        yield Client(http, arena.url)


# ---- hostile databases ----------------------------------------------------------------------------------------------


async def publish_attacker(client: Client, source: bytes, label: str) -> Database:
    """Publish ``source`` as a new database under a fresh identity (minted by the publish itself)."""
    name = f"{label}-{uuid.uuid4().hex[:8]}"
    answer, owner = await client.publish(name, source)
    assert answer.status == 200, answer
    assert owner is not None
    return Database(name, json.loads(answer.text)["Success"]["database_identity"], owner)


async def loot(client: Client, attacker: Database) -> dict[str, list[str]]:
    """What a hostile module stored in its public ``loot`` table: ``{what: [data, ...]}``."""
    found: dict[str, list[str]] = {}
    for what, data in await client.rows(attacker, "SELECT what, data FROM loot"):
        found.setdefault(what, []).append(data)
    return found


async def worker_pid(client: Client, attacker: Database) -> int:
    """The pid of the attacker's worker process right now: what its ``whoami`` reducer just reported, the ``pid``
    row with the highest id (not the highest pid: pids wrap around, so a restarted worker may get a lower one)."""
    answer = await client.call(attacker, "whoami")
    assert answer.status == 200, answer
    reports = await client.rows(attacker, "SELECT id, data FROM loot WHERE what = 'pid'")
    _, newest = max(reports, key=lambda report: int(report[0]))
    return int(newest)


async def poll(check: Callable[[], Awaitable[bool]], timeout: float, interval: float = 0.05) -> bool:
    """Call ``check`` until it is true or ``timeout`` seconds have passed; whether it became true."""
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(interval)


# ---- the victim ------------------------------------------------------------------------------------------------------


async def assert_victim_intact(client: Client, arena: Arena) -> float:
    """The victim's secret is there and private, and a call to it commits; returns that call's latency."""
    victim = arena.victim
    assert await client.rows(victim, "SELECT value FROM secret") == [[arena.secret]]
    text = f"check-{uuid.uuid4().hex}"
    answer = await client.call(victim, "write", text)
    assert answer.status == 200, answer
    assert await client.rows(victim, f"SELECT text FROM note WHERE text = '{text}'") == [[text]]
    peek = await client.sql(victim, "SELECT * FROM secret", arena.stranger)
    assert peek.status == 400 and arena.secret not in peek.text, peek  # "no such table ... may be private"
    return answer.seconds


class VictimProbe:
    """Calls the victim's ``write`` reducer back to back while an attack runs, and times every call.

    ``async with VictimProbe(client, arena, "label") as probe:`` starts it; leaving the block stops it, then
    checks that every call succeeded and committed, prints the worst latency and checks it against a generous
    bound.
    """

    def __init__(self, client: Client, arena: Arena, label: str) -> None:
        self.client = client
        self.arena = arena
        self.label = label
        self.prefix = f"probe-{uuid.uuid4().hex[:12]}-"
        self.answers: list[Answer] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> VictimProbe:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._stop.set()
        assert self._task is not None
        await asyncio.wait_for(self._task, REQUEST_TIMEOUT + 5)
        if exc_info[0] is None:
            await self.check()

    async def _run(self) -> None:
        for n in range(PROBE_MAX_CALLS):
            self.answers.append(
                await self.client.call(
                    self.arena.victim, "write", f"{self.prefix}{n}", timeout=REQUEST_TIMEOUT
                )
            )
            if self._stop.is_set() and len(self.answers) >= PROBE_MIN_CALLS:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), PROBE_INTERVAL)

    @property
    def max_latency(self) -> float:
        return max(answer.seconds for answer in self.answers)

    async def check(self) -> None:
        assert self.answers, "the victim was never called during the attack"
        failed = [answer for answer in self.answers if answer.status != 200]
        assert not failed, f"victim calls failed during {self.label}: {failed[:3]}"
        stored = {
            row[0]
            for row in await self.client.rows(self.arena.victim, "SELECT text FROM note")
            if row[0].startswith(self.prefix)
        }
        assert len(stored) == len(self.answers), "an acknowledged victim call was not committed"
        print(
            f"[victim during {self.label}] {len(self.answers)} calls, "
            f"max latency {self.max_latency * 1000:.0f} ms"
        )
        assert self.max_latency < VICTIM_MAX_LATENCY, (
            f"the victim stalled during {self.label}: a call took {self.max_latency:.2f}s"
        )


class PingProbe:
    """Pings the server back to back while something runs; every ping must answer 200."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.latencies: list[float] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> PingProbe:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._stop.set()
        assert self._task is not None
        await asyncio.wait_for(self._task, 30)
        assert self.latencies, "the server was never pinged"

    async def _run(self) -> None:
        deadline = time.monotonic() + 120
        while not self._stop.is_set() and time.monotonic() < deadline:
            answer = await self.client.ping()
            assert answer.status == 200, answer
            self.latencies.append(answer.seconds)
            try:
                await asyncio.wait_for(self._stop.wait(), 0.05)
            except TimeoutError:
                pass
