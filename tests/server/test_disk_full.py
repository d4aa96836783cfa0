"""A full disk is answered clearly: calls that would write get 507 "no space left on device: NAME", the database
keeps serving reads, writes again once there is space, and a call that was answered with an error is not in the
database afterwards. The disk is a small tmpfs the test mounts (root only; skipped, saying why, elsewhere)."""

import asyncio
import os
import subprocess
import time
import uuid
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import start_server

pytestmark = pytest.mark.slow  # real processes or long runs: ./test.sh --fast leaves these out


NOTES = b"""
from typing import Annotated
from spacetimedb import table, reducer, ReducerContext, PrimaryKey, AutoInc, u64

@table(public=True)
class Note:
    id: Annotated[u64, PrimaryKey, AutoInc]
    text: str

@reducer
def add(ctx: ReducerContext, text: str) -> None:
    ctx.db.note.insert(Note(id=0, text=text))
"""
DISK_BYTES = 24 << 20


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill (needs root): {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path) -> Path:
    """Write a filler file until the disk is full."""
    filler = disk / f"filler-{uuid.uuid4().hex}"
    chunk = b"\0" * (1 << 16)
    with open(filler, "wb") as out:
        try:
            while True:
                out.write(chunk)
                out.flush()
        except OSError:
            pass
    return filler


async def notes(http, url, auth):
    response = await http.post(f"{url}/v1/database/notes/sql", data="SELECT text FROM note", headers=auth)
    assert response.status == 200, await response.text()
    return sorted(row[0] for row in (await response.json())[0]["rows"])


def test_a_full_disk_makes_the_database_read_only_until_there_is_space(small_disk):
    server = start_server(small_disk / "data")
    try:

        async def scenario() -> list[str]:
            async with aiohttp.ClientSession() as http:
                response = await http.post(f"{server.url}/v1/identity")
                auth = {"Authorization": f"Bearer {(await response.json())['token']}"}
                response = await http.put(f"{server.url}/v1/database/notes", data=NOTES, headers=auth)
                assert response.status == 200, await response.text()
                call = f"{server.url}/v1/database/notes/call/add"
                assert (await http.post(call, json=["before"], headers=auth)).status == 200

                filler = fill(small_disk)
                # what still fits in the log file's last allocated page is accepted; then the disk is full
                acknowledged, refused = ["before"], []
                for attempt in range(500):
                    text = f"during {attempt} " + "x" * 200
                    response = await http.post(call, json=[text], headers=auth)
                    answer = await response.text()
                    if response.status == 200:
                        acknowledged.append(text)
                        continue
                    assert response.status == 507, answer
                    assert "no space left on device: notes" in answer
                    refused.append(text)
                    if len(refused) == 3:
                        break
                print(f"on a full disk: {len(acknowledged) - 1} call(s) still fitted, then 507: {answer}")
                assert len(refused) == 3
                # it still reads: exactly what was acknowledged
                assert await notes(http, server.url, auth) == sorted(acknowledged)

                os.remove(filler)
                deadline = time.monotonic() + 30
                while True:
                    response = await http.post(call, json=["after"], headers=auth)
                    if response.status == 200 or time.monotonic() > deadline:
                        break
                    assert response.status == 507, await response.text()
                    await asyncio.sleep(0.5)
                assert response.status == 200, await response.text()
                acknowledged.append("after")
                assert await notes(http, server.url, auth) == sorted(acknowledged)
                # the log says what happened
                response = await http.get(f"{server.url}/v1/database/notes/logs", headers=auth)
                log = await response.text()
                assert "No space left on device" in log and "there is space on the disk again" in log
                return acknowledged

        acknowledged = asyncio.run(scenario())
    finally:
        server.stop()
    # and after a restart, still exactly what was acknowledged
    again = start_server(small_disk / "data")
    try:

        async def check():
            async with aiohttp.ClientSession() as http:
                response = await http.post(f"{again.url}/v1/database/notes/sql", data="SELECT text FROM note")
                rows = sorted(row[0] for row in (await response.json())[0]["rows"])
                assert rows == sorted(acknowledged)

        asyncio.run(check())
    finally:
        again.stop()
