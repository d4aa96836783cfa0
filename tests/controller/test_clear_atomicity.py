"""SIGKILL the server at random points of a ``publish --clear`` and of a creation: after a restart the name holds
the old database intact or the new one working, never anything in between, and nothing is left beside the
databases the control database knows."""

from __future__ import annotations

import asyncio
import collections
import os
import random
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import ServerProcess, start_server

pytestmark = pytest.mark.slow  # real processes or long runs: ./test.sh --fast leaves these out


NAME = "cleared"
MODULE = """
import time
from typing import Annotated
from spacetimedb import table, reducer, ReducerContext, PrimaryKey, u32

@table(public=True)
class {cls}:
    id: Annotated[u32, PrimaryKey]

@reducer
def add_{table}(ctx: ReducerContext, id: u32) -> None:
    ctx.db.{table}.insert({cls}(id=id))

@reducer
def linger(ctx: ReducerContext, seconds: float) -> None:
    time.sleep(seconds)
"""
# two modules with different tables: which one answers tells which database the name holds
MODULES = {table: MODULE.format(cls=table.title(), table=table).encode() for table in ("alpha", "beta")}
CLEAR_KILLS = 12
# a call the old database is still running when the new one is ready: the swap waits for it, which holds the
# clear between the two for a while (a kill there must leave the old database)
LINGER_SECONDS = 3.0
CREATION_KILLS = 6
WORKERS_GONE_SECONDS = 15.0


def other(module: str) -> str:
    return "beta" if module == "alpha" else "alpha"


@dataclass
class Database:
    """What the test knows of the cleared database: its module and the rows acknowledged since its creation."""

    identity: str
    module: str
    rows: set[int] = field(default_factory=set)


class Http:
    def __init__(self, session: aiohttp.ClientSession, url: str, auth: dict[str, str]) -> None:
        self.session, self.url, self.auth = session, url, auth

    async def publish(self, name: str, module: str, clear: bool = False) -> tuple[int, dict | str]:
        response = await self.session.put(
            f"{self.url}/v1/database/{name}",
            data=MODULES[module],
            headers=self.auth,
            params={"clear": "true"} if clear else None,
        )
        body = await response.json() if response.status == 200 else await response.text()
        return response.status, body

    async def call(self, name: str, reducer: str, *args: object) -> int:
        response = await self.session.post(
            f"{self.url}/v1/database/{name}/call/{reducer}", json=list(args), headers=self.auth
        )
        return response.status

    async def add(self, name: str, module: str, row: int) -> int:
        return await self.call(name, f"add_{module}", row)

    async def clear_while_busy(self, module: str) -> tuple[int, dict | str]:
        """Clear the database towards ``module`` while its old module runs a call that outlasts the creation."""
        linger = asyncio.ensure_future(self.call(NAME, "linger", LINGER_SECONDS))
        try:
            return await self.publish(NAME, module, clear=True)
        finally:
            await asyncio.gather(linger, return_exceptions=True)

    async def rows(self, name: str, table: str) -> set[int] | None:
        """The ids in ``table`` (None: no such table)."""
        response = await self.session.post(
            f"{self.url}/v1/database/{name}/sql", data=f"SELECT * FROM {table}", headers=self.auth
        )
        if response.status != 200:
            return None
        return {row[0] for row in (await response.json())[0]["rows"]}

    async def identity_of(self, name: str) -> str | None:
        response = await self.session.get(f"{self.url}/v1/database/{name}")
        if response.status == 404:
            return None
        assert response.status == 200, await response.text()
        return (await response.json())["database_identity"]["__identity__"].removeprefix("0x")


async def new_auth(session: aiohttp.ClientSession, url: str) -> dict[str, str]:
    response = await session.post(f"{url}/v1/identity")
    return {"Authorization": f"Bearer {(await response.json())['token']}"}


def databases_listing(data_dir: Path) -> list[str]:
    return sorted(entry.name for entry in (data_dir / "databases").iterdir())


def phase_of(listing: list[str], acknowledged: bool, outcome: str) -> str:
    """Where a kill fell, as far as the names in ``databases/`` tell (the test never opens the files), and with
    nothing beside the database, which one it is afterwards."""
    if acknowledged:
        return "acknowledged"
    for prefix, phase in (
        (".replaced-", "swapping"),
        (".ready-", "created, not swapped"),
        (".staging-", "creating"),
    ):
        if any(name.startswith(prefix) for name in listing):
            return phase
    return "validating" if outcome == "old" else "swapped, not yet answered"


def wait_for_workers_gone(data_dir: Path) -> None:
    """The workers of a killed server die with it (the kernel kills them), a moment later: a new server must not
    find one of them still holding a database's lock."""
    marker = str(data_dir).encode()
    deadline = time.monotonic() + WORKERS_GONE_SECONDS
    while time.monotonic() < deadline:
        if not any(
            marker in _cmdline(pid) and b"spacetimedb.host.worker" in _cmdline(pid) for pid in _pids()
        ):
            return
        time.sleep(0.05)
    raise AssertionError(f"workers of a killed server still run after {WORKERS_GONE_SECONDS:g}s")


def _pids() -> list[str]:
    return [entry for entry in os.listdir("/proc") if entry.isdigit()]


def _cmdline(pid: str) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            return file.read()
    except OSError:
        return b""


Listed = Callable[[list[str]], bool]


def entry_starting(prefix: str) -> Listed:
    return lambda listing: any(name.startswith(prefix) for name in listing)


def more_entries_than(count: int) -> Listed:
    return lambda listing: len(listing) > count


async def kill_during(
    server: ServerProcess,
    publishing: Awaitable[tuple[int, dict | str]],
    delay: float,
    once: Listed | None = None,
) -> bool:
    """SIGKILL the server ``delay`` seconds into ``publishing``, or ``delay`` seconds after the listing of its
    ``databases/`` first satisfies ``once``; True if the publish was acknowledged."""
    attempt = asyncio.ensure_future(publishing)
    if once is not None:
        await listing_shows(server, once, attempt)
    await asyncio.wait([attempt], timeout=delay)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(10)
    try:
        status, body = await asyncio.wait_for(attempt, 30)
    except (aiohttp.ClientError, OSError):
        return False  # the answer never came
    assert status == 200, body
    return True


async def listing_shows(server: ServerProcess, wanted: Listed, attempt: asyncio.Future[object]) -> None:
    """Wait until the listing of the server's ``databases/`` satisfies ``wanted`` (or ``attempt`` is done)."""
    assert server.data_dir is not None
    deadline = time.monotonic() + 30
    while not attempt.done() and time.monotonic() < deadline:
        if wanted(databases_listing(server.data_dir)):
            return
        await asyncio.sleep(0.002)


def restart(server: ServerProcess, data_dir: Path) -> ServerProcess:
    if server.process.stdout is not None:
        server.process.stdout.close()
    wait_for_workers_gone(data_dir)
    return start_server(data_dir)


async def check_after_restart(http: Http, database: Database, row: int, acknowledged: bool) -> str:
    """The name holds the old database intact or the new one working; returns which, and records its new row."""
    assert await http.identity_of(NAME) == database.identity  # a clear keeps the identity
    old, new = database.module, other(database.module)
    if await http.add(NAME, old, row) == 200:
        assert not acknowledged, "an acknowledged clear was undone"
        database.rows.add(row)
        assert await http.rows(NAME, old) == database.rows  # every acknowledged row, nothing else
        assert await http.rows(NAME, new) is None
        return "old"
    status = await http.add(NAME, new, row)
    assert status == 200, f"neither the old nor the new module answers (status {status})"
    assert await http.rows(NAME, new) == {row}  # a fresh database: only the row just added
    assert await http.rows(NAME, old) is None  # and the old data is gone with the old tables
    database.module, database.rows = new, {row}
    return "new"


def test_a_sigkill_at_any_point_of_a_clear_leaves_the_old_database_or_the_new_one(tmp_path):
    data_dir = tmp_path / "data"
    rng = random.Random(1414)
    server = start_server(data_dir)
    outcomes: collections.Counter[tuple[str, str]] = collections.Counter()

    async def scenario() -> None:
        nonlocal server
        async with aiohttp.ClientSession() as session:
            http = Http(session, server.url, await new_auth(session, server.url))
            status, body = await http.publish(NAME, "alpha")
            assert status == 200, body
            database = Database(body["Success"]["database_identity"], "alpha")
            for row in (1, 2, 3):
                assert await http.add(NAME, "alpha", row) == 200
                database.rows.add(row)
            started = time.monotonic()
            status, body = await http.publish(NAME, "beta", clear=True)
            clear_seconds = time.monotonic() - started
            assert status == 200, body
            assert await check_after_restart(http, database, 4, acknowledged=True) == "new"
            for iteration in range(CLEAR_KILLS):
                module = other(database.module)
                # a quarter of the kills anywhere (the answer included); a quarter while the new database is being
                # made; a quarter once it is ready and the swap waits for the old one; a quarter right after it is
                # ready, where the swap, the record and the answer follow within milliseconds
                once, delay = [
                    (None, rng.uniform(0, 1.2) * clear_seconds),
                    (entry_starting(".staging-"), rng.uniform(0, 0.2)),
                    (entry_starting(".ready-"), rng.uniform(0, 0.1)),
                    (entry_starting(".ready-"), rng.uniform(0, 0.02)),
                ][iteration % 4]
                busy = iteration % 4 == 2
                clearing = http.clear_while_busy(module) if busy else http.publish(NAME, module, clear=True)
                acknowledged = await kill_during(server, clearing, delay, once)
                listing = databases_listing(data_dir)
                server = restart(server, data_dir)
                http.url = server.url
                outcome = await check_after_restart(http, database, 100 + iteration, acknowledged)
                phase = phase_of(listing, acknowledged, outcome)
                outcomes[phase, outcome] += 1
                # nothing but the database itself: no staging, ready, replaced or deleting directories
                assert databases_listing(data_dir) == [database.identity], (phase, outcome)

    try:
        asyncio.run(scenario())
    finally:
        server.shut_down()
    print(
        f"\nclear killed {CLEAR_KILLS} times; (phase, database afterwards): {dict(sorted(outcomes.items()))}"
    )
    assert sum(outcomes.values()) == CLEAR_KILLS


FAILING_INIT = b"""
from spacetimedb import reducer, ReducerContext

@reducer(lifecycle="init")
def init(ctx: ReducerContext) -> None:
    raise ValueError("this init always fails")
"""


def test_a_clear_whose_new_database_fails_to_start_changes_nothing(server):
    async def scenario() -> None:
        async with aiohttp.ClientSession() as session:
            http = Http(session, server.url, await new_auth(session, server.url))
            status, body = await http.publish(NAME, "alpha")
            assert status == 200, body
            assert await http.add(NAME, "alpha", 1) == 200
            response = await session.put(
                f"{server.url}/v1/database/{NAME}",
                data=FAILING_INIT,
                headers=http.auth,
                params={"clear": "true"},
            )
            assert response.status == 400 and "this init always fails" in await response.text()
            assert await http.add(NAME, "alpha", 2) == 200
            assert await http.rows(NAME, "alpha") == {1, 2}
            assert databases_listing(server.data_dir) == [body["Success"]["database_identity"]]

    asyncio.run(scenario())


def test_a_sigkill_during_a_creation_leaves_no_orphan_directory(tmp_path):
    data_dir = tmp_path / "data"
    rng = random.Random(2718)
    server = start_server(data_dir)
    orphans = 0

    async def scenario() -> None:
        nonlocal server, orphans
        async with aiohttp.ClientSession() as session:
            http = Http(session, server.url, await new_auth(session, server.url))
            started = time.monotonic()
            status, body = await http.publish("first", "alpha")
            create_seconds = time.monotonic() - started
            assert status == 200, body
            names = ["first"]
            for iteration in range(CREATION_KILLS):
                name = f"fresh-{iteration}"
                names.append(name)
                existing = len(databases_listing(data_dir))
                # every other kill soon after the new database's directory appeared (before it is recorded)
                once, delay = [
                    (None, rng.uniform(0, 1.1) * create_seconds),
                    (more_entries_than(existing), rng.uniform(0, 0.15)),
                ][iteration % 2]
                acknowledged = await kill_during(server, http.publish(name, "alpha"), delay, once)
                before = databases_listing(data_dir)
                server = restart(server, data_dir)
                http.url = server.url
                identities = {each: await http.identity_of(each) for each in names}
                assert not acknowledged or identities[name] is not None, "an acknowledged creation was lost"
                known = sorted(identity for identity in identities.values() if identity is not None)
                assert databases_listing(data_dir) == known  # no orphan, no debris
                for other_name, identity in identities.items():
                    if identity is not None:
                        assert await http.add(other_name, "alpha", iteration) == 200
                orphans += len(set(before) - set(known))

    try:
        asyncio.run(scenario())
    finally:
        server.shut_down()
    print(f"\ncreation killed {CREATION_KILLS} times; orphan directories removed at restarts: {orphans}")
