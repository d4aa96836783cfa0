"""Every read runs within bounds: a time budget, a row limit (for others than the owner, who may raise it with
``SET row_limit``) and a byte limit; the answer names the bound that was hit, a long read holds writers back no
longer than its budget, and a read stops when its client hangs up. Black box, against a real server."""

import asyncio
import time

import aiohttp
import asyncpg
import pytest

from spacetimedb.protocol import v2
from tests.conftest import start_server
from tests.server.wsclient import RawClient

pytestmark = pytest.mark.slow  # real processes or long runs: ./test.sh --fast leaves these out


GRID = b"""
from typing import Annotated
from spacetimedb import table, reducer, ReducerContext, PrimaryKey, u32

@table(public=True)
class Cell:
    id: Annotated[u32, PrimaryKey]
    payload: str

@table(public=True)
class Note:
    id: Annotated[u32, PrimaryKey]

@reducer
def fill(ctx: ReducerContext, n: u32, width: u32) -> None:
    for i in range(n):
        ctx.db.cell.insert(Cell(id=i, payload="x" * width))

@reducer
def note(ctx: ReducerContext, id: u32) -> None:
    ctx.db.note.insert(Note(id=id))
"""
CROSS_JOIN = "SELECT a.* FROM cell a JOIN cell b ON a.id != b.id"
# all payloads are equal: 27 billion triples to look at and none returned, so only the time budget can stop it
# (on any machine), and the byte limit has nothing to count
CROSS_NOTHING = "SELECT a.* FROM cell a JOIN cell b ON a.id != b.id JOIN cell c ON b.id != c.id WHERE a.payload != c.payload"


async def new_identity(http: aiohttp.ClientSession, url: str) -> dict[str, str]:
    response = await http.post(f"{url}/v1/identity")
    return {"Authorization": f"Bearer {(await response.json())['token']}"}


async def grid_with_cells(http: aiohttp.ClientSession, url: str, width: int) -> dict[str, str]:
    """Publish GRID as a new identity and fill it with 3,000 cells of ``width`` bytes; the owner's headers."""
    owner = await new_identity(http, url)
    response = await http.put(f"{url}/v1/database/grid", data=GRID, headers=owner)
    assert response.status == 200, await response.text()
    response = await http.post(f"{url}/v1/database/grid/call/fill", json=[3000, width], headers=owner)
    assert response.status == 200, await response.text()
    return owner


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    """A server with small limits: 1 s budget, 1,000 rows for strangers, 200 KiB per result."""
    server = start_server(
        tmp_path_factory.mktemp("limits") / "data",
        extra_args=["--reducer-budget", "1", "--query-row-limit", "1000", "--query-byte-limit", "200KiB"]
        + ["--pg-port", "0"],
    )

    async def setup():
        async with aiohttp.ClientSession() as http:
            owner = await grid_with_cells(http, server.url, 60)
            return owner, await new_identity(http, server.url)

    owner, stranger = asyncio.run(setup())
    yield server, owner, stranger
    server.stop()


async def sql(http, url, query, auth):
    response = await http.post(f"{url}/v1/database/grid/sql", data=query, headers=auth)
    return response.status, await response.text()


def test_a_strangers_big_query_is_refused_at_once_naming_the_row_limit(limited):
    server, _owner, stranger = limited

    async def scenario():
        async with aiohttp.ClientSession() as http:
            started = time.monotonic()
            status, text = await sql(http, server.url, CROSS_JOIN, stranger)
            print(f"cross join as a stranger: {status} after {time.monotonic() - started:.2f}s: {text[:120]}")
            assert status == 400 and "exceeds limit (1000 rows)" in text
            status, text = await sql(http, server.url, "SELECT * FROM cell", stranger)
            assert status == 400 and "1000 rows" in text
            # as upstream, a range is estimated at the table's size; a point lookup at what it finds
            status, text = await sql(http, server.url, "SELECT * FROM cell WHERE id < 10", stranger)
            assert status == 400 and "Estimated cardinality (3000 rows)" in text
            status, text = await sql(http, server.url, "SELECT * FROM cell WHERE id = 10", stranger)
            assert status == 200 and "xxx" in text

    asyncio.run(scenario())


def test_the_owner_raises_the_row_limit_with_set(limited):
    server, owner, stranger = limited

    async def scenario():
        async with aiohttp.ClientSession() as http:
            query = "SELECT id FROM cell"
            status, text = await sql(http, server.url, query, stranger)
            assert status == 400 and "1000" in text
            status, text = await sql(http, server.url, "SET row_limit = 3000", owner)
            assert status == 200, text
            try:
                status, text = await sql(http, server.url, query, stranger)
                assert status == 200, text
            finally:
                await sql(http, server.url, "SET row_limit = 1000", owner)

    asyncio.run(scenario())


def test_results_beyond_the_byte_limit_are_refused_for_everyone(limited):
    server, owner, _ = limited

    async def scenario():
        async with aiohttp.ClientSession() as http:
            status, text = await sql(http, server.url, "SELECT * FROM cell", owner)  # 3,000 rows of 60 bytes
            assert status == 400 and "larger than 200 KiB, the query byte limit" in text, text

    asyncio.run(scenario())


def test_a_long_read_stops_at_its_budget_and_holds_writers_back_no_longer(limited):
    server, owner, _ = limited

    async def scenario():
        async with aiohttp.ClientSession() as http:
            started = time.monotonic()
            reading = asyncio.ensure_future(sql(http, server.url, CROSS_JOIN, owner))
            await asyncio.sleep(0.2)
            response = await http.post(f"{server.url}/v1/database/grid/call/note", json=[1], headers=owner)
            writer_waited = time.monotonic() - started
            assert response.status == 200, await response.text()
            status, text = await reading
            print(f"owner's cross join: {status} {text[:100]}; the writer waited {writer_waited:.2f}s")
            assert status == 400 and "time budget (1s)" in text
            assert writer_waited < 10  # the 1 s budget (+ the 1 s... grace) bounds it, not the 9M rows

    asyncio.run(scenario())


def test_postgresql_clients_meet_the_same_limits_in_the_same_words(limited):
    server, owner, stranger = limited

    async def refusal(auth: dict[str, str], query: str) -> tuple[str, str]:
        conn = await asyncpg.connect(
            host="127.0.0.1", port=server.pg_port, user="any", database="grid", ssl=False,
            password=auth["Authorization"].removeprefix("Bearer "),
        )  # fmt: skip
        try:
            with pytest.raises(asyncpg.PostgresError) as refused:
                await conn.fetch(query)
            assert await conn.fetchval("SELECT id FROM cell WHERE id = $1", 5) == 5  # still usable
            return refused.value.sqlstate, str(refused.value)
        finally:
            await conn.close()

    async def scenario():
        async with aiohttp.ClientSession() as http:
            # the row limit, and the time budget (a join that returns nothing: it can never meet the byte limit first,
            # which a fast machine's cross join of rows may do over pg, where rows are counted as they come)
            for auth, code, query in ((stranger, "54000", CROSS_JOIN), (owner, "57014", CROSS_NOTHING)):
                _, http_text = await sql(http, server.url, query, auth)
                assert await refusal(auth, query) == (code, http_text)

    asyncio.run(scenario())


def test_websocket_reads_are_bounded_too(limited):
    server, _owner, stranger = limited
    token = stranger["Authorization"].split()[1]

    async def scenario():
        async with aiohttp.ClientSession() as http:
            client, _ = await RawClient.connect(http, server.url, "grid", token=token)
            await client.send(v2.ONE_OFF_QUERY, 7, CROSS_JOIN)
            answer = await client.next_of(v2.ONE_OFF_QUERY_RESULT)
            assert answer.value[1].tag == 1 and "1000 rows" in answer.value[1].value
            await client.subscribe(1, "SELECT * FROM cell")
            refused = await client.next_of(v2.SUBSCRIPTION_ERROR)
            assert "1000" in refused.value[2], refused
            await client.subscribe(2, "SELECT * FROM cell WHERE id = 5")
            applied = await client.next_of(v2.SUBSCRIBE_APPLIED)
            assert applied.value[0] == client.request_id
            await client.ws.close()

    asyncio.run(scenario())


async def _writer_wait(server, owner: dict[str, str], note: int) -> float:
    """How long a reducer call waits (behind a read that should have stopped)."""
    started = time.monotonic()
    async with aiohttp.ClientSession() as http:
        response = await http.post(f"{server.url}/v1/database/grid/call/note", json=[note], headers=owner)
        assert response.status == 200
    return time.monotonic() - started


def test_a_read_stops_when_its_client_hangs_up(tmp_path):
    server = start_server(tmp_path / "data", extra_args=["--reducer-budget", "20", "--pg-port", "0"])
    try:

        async def scenario():
            async with aiohttp.ClientSession() as http:
                owner = await grid_with_cells(http, server.url, 4)
            # the owner's cross join would run for its whole 20 s budget: hang up after half a second
            async with aiohttp.ClientSession() as quitter:
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(sql(quitter, server.url, CROSS_JOIN, owner), 0.5)
            waited = await _writer_wait(server, owner, 2)
            print(f"a writer after the reader hung up waited {waited:.2f}s (the read's budget is 20 s)")
            assert waited < 10
            # the same over PostgreSQL: the client's connection closes mid-query
            token = owner["Authorization"].removeprefix("Bearer ")
            conn = await asyncpg.connect(
                host="127.0.0.1", port=server.pg_port, user="any", database="grid", password=token, ssl=False
            )
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(conn.fetch(CROSS_JOIN), 0.5)
            conn.terminate()
            waited = await _writer_wait(server, owner, 3)
            print(f"a writer after the PostgreSQL reader hung up waited {waited:.2f}s")
            assert waited < 10

        asyncio.run(scenario())
    finally:
        server.stop()
