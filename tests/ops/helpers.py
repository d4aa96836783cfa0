"""What the operations tests share: a server with small snapshots and segments, identities, calls, queries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp

MODULES = Path(__file__).resolve().parent / "modules"
LEDGER = (MODULES / "ledger.py").read_bytes()
# snapshots and segment rotations happen within a few hundred transactions
SMALL_STORAGE = ["--snapshot-interval", "150", "--max-segment-size", "32768"]


async def new_identity(http: aiohttp.ClientSession, url: str) -> dict[str, str]:
    async with http.post(f"{url}/v1/identity") as response:
        assert response.status == 200
        body = await response.json()
    return {"Authorization": f"Bearer {body['token']}"}


async def publish(http: aiohttp.ClientSession, url: str, name: str, auth: dict[str, str]) -> str:
    async with http.put(f"{url}/v1/database/{name}", data=LEDGER, headers=auth) as response:
        assert response.status == 200, await response.text()
        return str((await response.json())["Success"]["database_identity"])


async def call(
    http: aiohttp.ClientSession, url: str, name: str, reducer: str, args: list[Any], auth: dict[str, str]
) -> None:
    async with http.post(f"{url}/v1/database/{name}/call/{reducer}", json=args, headers=auth) as response:
        assert response.status == 200, await response.text()


async def rows(
    http: aiohttp.ClientSession, url: str, name: str, query: str, auth: dict[str, str], **params: str
) -> list[list[Any]]:
    async with http.post(
        f"{url}/v1/database/{name}/sql", data=query, headers=auth, params=params
    ) as response:
        text = await response.text()
        assert response.status == 200, text
    return list(json.loads(text)[0]["rows"])


async def ledger(
    http: aiohttp.ClientSession, url: str, accounts: int, initial: int, name: str = "ledger"
) -> tuple[dict[str, str], str]:
    """A new identity's ledger database with ``accounts`` accounts of ``initial`` each: (its auth, identity)."""
    auth = await new_identity(http, url)
    identity = await publish(http, url, name, auth)
    await call(http, url, name, "seed", [accounts, initial], auth)
    return auth, identity
