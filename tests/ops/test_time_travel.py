"""Reads of the past: `sql --as-of` at five offsets matches the states recorded when they were current, by offset
and by time; the transaction list; refusals (out of range, too much to replay, writes, not the owner)."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from tests.conftest import start_server

from .helpers import SMALL_STORAGE, call, ledger, new_identity, rows

pytestmark = pytest.mark.slow  # real processes or long runs: ./test.sh --fast leaves these out


ACCOUNTS = 4


async def newest(http: aiohttp.ClientSession, url: str, name: str, auth: dict[str, str]) -> dict:
    async with http.get(
        f"{url}/v1/database/{name}/transactions", params={"limit": "1"}, headers=auth
    ) as response:
        assert response.status == 200, await response.text()
        body = await response.json()
        assert len(body) == 1, body
        (entry,) = body
    return entry


async def as_of(
    http: aiohttp.ClientSession,
    url: str,
    name: str,
    when: str,
    auth: dict[str, str],
    query: str = "SELECT * FROM account",
) -> tuple[int, str, dict]:
    async with http.post(
        f"{url}/v1/database/{name}/sql", params={"as_of": when}, data=query, headers=auth
    ) as response:
        return response.status, await response.text(), {k.lower(): v for k, v in response.headers.items()}


def test_queries_as_of_five_offsets_match_the_states_recorded_then(ops_server):
    url = ops_server.url

    async def scenario():
        async with aiohttp.ClientSession() as http:
            auth, _ = await ledger(http, url, ACCOUNTS, 1000)
            recorded: list[tuple[dict, list]] = []
            # 5 points over ~360 transactions (a call also logs its caller's connection and disconnection),
            # before and after snapshots (every 150) and segment rotations
            for step in range(120):
                await call(
                    http,
                    url,
                    "ledger",
                    "transfer",
                    [0, step, step % ACCOUNTS, (step + 1) % ACCOUNTS, step + 1],
                    auth,
                )
                if step in (0, 30, 55, 90, 119):
                    state = sorted(await rows(http, url, "ledger", "SELECT * FROM account", auth))
                    recorded.append((await newest(http, url, "ledger", auth), state))
            for number, (entry, state) in enumerate(recorded):
                status, body, headers = await as_of(http, url, "ledger", str(entry["offset"]), auth)
                assert status == 200, body
                assert sorted(json.loads(body)[0]["rows"]) == state, entry["offset"]
                assert int(headers["spacetime-as-of-offset"]) == entry["offset"]
                replayed = int(headers["spacetime-as-of-replayed"])
                snapshot = headers["spacetime-as-of-snapshot-offset"]
                assert replayed <= 151 and (snapshot == "" or int(snapshot) + replayed == entry["offset"])
                if number % 2:
                    continue
                # the same state by its time
                status, body, headers = await as_of(http, url, "ledger", entry["time"], auth)
                assert status == 200 and sorted(json.loads(body)[0]["rows"]) == state
                assert int(headers["spacetime-as-of-offset"]) >= entry["offset"]
            # refusals, each saying why
            status, body, _ = await as_of(http, url, "ledger", "1000000", auth)
            assert status == 400 and "past the last durable transaction" in body
            status, body, _ = await as_of(http, url, "ledger", "1999-01-01T00:00:00Z", auth)
            assert status == 400 and "no transaction kept was committed at or before" in body
            status, body, _ = await as_of(http, url, "ledger", "yesterday", auth)
            assert status == 400 and "transaction offset or a time" in body
            status, body, _ = await as_of(http, url, "ledger", "5", auth, "DELETE FROM account")
            assert status == 400 and "only reads" in body
            status, body, _ = await as_of(http, url, "ledger", "5", auth, "SELECT * FROM nowhere")
            assert status == 400 and "nowhere" in body
            stranger = await new_identity(http, url)
            status, body, _ = await as_of(http, url, "ledger", "5", stranger)
            assert status == 403
            # the transaction list: reducers, callers, rows per table
            async with http.get(
                f"{url}/v1/database/ledger/transactions", params={"from": "0", "limit": "500"}, headers=auth
            ) as response:
                entries = await response.json()
            transfers = [e for e in entries if e["reducer"] == "transfer"]
            assert len(transfers) == 120
            assert transfers[0]["tables"] == {
                "account": {"inserted": 2, "deleted": 2, "truncated": False},
                "receipt": {"inserted": 1, "deleted": 0, "truncated": False},
            }
            assert [e["offset"] for e in entries] == list(
                range(entries[0]["offset"], entries[0]["offset"] + len(entries))
            )
            assert entries[0]["reducer"] is None and "st_table" in entries[0]["tables"]  # the creation

    asyncio.run(scenario())


def test_reads_of_the_past_are_bounded_and_stop_at_the_oldest_state_kept(tmp_path):
    server = start_server(tmp_path / "data", extra_args=[*SMALL_STORAGE, "--as-of-max-replay", "40"])

    async def scenario():
        async with aiohttp.ClientSession() as http:
            auth, _ = await ledger(http, server.url, ACCOUNTS, 1000)
            for step in range(60):
                await call(http, server.url, "ledger", "transfer", [0, step, 0, 1, 1], auth)
            # no snapshot before offset 150: reading offset 100 would replay 101 transactions
            status, body, _ = await as_of(http, server.url, "ledger", "100", auth)
            assert status == 400 and "more than the limit of 40" in body and "--as-of-max-replay" in body
            status, body, headers = await as_of(http, server.url, "ledger", "30", auth)
            assert status == 200 and headers["spacetime-as-of-replayed"] == "31"
            # a database restored from a backup keeps its log from the backup's snapshot on
            for step in range(60, 120):
                await call(http, server.url, "ledger", "transfer", [0, step, 0, 1, 1], auth)
            async with http.get(f"{server.url}/v1/database/ledger/backup", headers=auth) as response:
                archive = await response.read()
                snapshot = int(response.headers["spacetime-backup-snapshot-offset"])
            async with http.post(
                f"{server.url}/v1/database/copy/restore", data=archive, headers=auth
            ) as response:
                assert response.status == 200, await response.text()
            status, body, _ = await as_of(http, server.url, "copy", "3", auth)
            assert status == 400 and "before the oldest state kept" in body, body
            status, body, _ = await as_of(http, server.url, "copy", str(snapshot), auth)
            assert status == 200, body

    try:
        asyncio.run(scenario())
    finally:
        server.shut_down()
