"""A module rewrites the server's code: in its worker's memory (authorization and lifecycle functions of the
routes, the controller, the host) and on disk (the installed project). Neither reaches the server: a stranger
still cannot delete or read the victim, and the victim keeps working."""

import asyncio
import sysconfig
import uuid
from pathlib import Path

import pytest

import spacetimedb

from .helpers import assert_victim_intact, connect, loot, module_source, publish_attacker, running_arena

pytestmark = pytest.mark.slow  # real processes or long runs: ./test.sh --fast leaves these out


MONKEYPATCH = module_source("monkeypatch")
PACKAGE_PARENT = Path(spacetimedb.__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def arena(tmp_path_factory):
    # the hostile module imports the server's own modules (aiohttp and all) at load time, which can take longer
    # than the usual one-second budget on a loaded machine
    with running_arena(tmp_path_factory.mktemp("arena"), reducer_budget=3.0) as running:
        yield running


def test_patching_server_code_in_a_worker_changes_nothing_outside_it(arena):
    async def scenario():
        async with connect(arena) as client:
            await assert_victim_intact(client, arena)
            attacker = await publish_attacker(client, MONKEYPATCH, "patcher")
            answer = await client.call(attacker, "report_patches")
            assert answer.status == 200, answer
            patched = await loot(client, attacker)
            # the patches did take in the worker: 8 functions replaced, at load time and again in a reducer
            assert [len(names.split(",")) for [names] in patched.values()] == [8, 8], patched
            victim = arena.victim
            for account, expected in [(arena.stranger, 403), (attacker.owner, 403), (None, 401)]:
                answer = await client.request("DELETE", f"/v1/database/{victim.name}", account)
                assert answer.status == expected, (account, answer)
                answer = await client.request("GET", f"/v1/database/{victim.name}/logs?num_lines=10", account)
                assert answer.status == expected, (account, answer)
                assert arena.secret not in answer.text
            answer, _ = await client.publish(victim.name, MONKEYPATCH, attacker.owner)
            assert answer.status == 403, answer
            answer = await client.request(
                "POST",
                f"/v1/database/{victim.name}/sql",
                headers={"Authorization": "Bearer not.a.token"},
                data="SELECT value FROM secret",
            )
            assert answer.status in (400, 401) and arena.secret not in answer.text, answer
            # the attacker's own database is still guarded by the server, not by its (patched) worker
            answer = await client.request("DELETE", f"/v1/database/{attacker.name}", arena.stranger)
            assert answer.status == 403, answer
            await assert_victim_intact(client, arena)

    asyncio.run(scenario())


def test_module_cannot_write_server_code_on_disk(arena):
    name = f"_written_by_a_module_{uuid.uuid4().hex}.pth"
    directories = [
        PACKAGE_PARENT,
        PACKAGE_PARENT / "spacetimedb" / "server",
        Path(sysconfig.get_paths()["purelib"]),
    ]

    async def scenario():
        async with connect(arena) as client:
            await assert_victim_intact(client, arena)
            attacker = await publish_attacker(client, MONKEYPATCH, "rewriter")
            answer = await client.call(attacker, "write_server_code", name)
            assert answer.status == 200, answer
            outcome = await loot(client, attacker)
            assert set(outcome) == {"refused"}, outcome
            assert len(outcome["refused"]) == 4
            for refusal in outcome["refused"]:
                assert "Permission denied" in refusal, refusal
            await assert_victim_intact(client, arena)

    try:
        asyncio.run(scenario())
        for directory in directories:
            assert not (directory / name).exists()
    finally:
        for directory in directories:  # should the attack ever work, leave no file the next run would import
            (directory / name).unlink(missing_ok=True)
