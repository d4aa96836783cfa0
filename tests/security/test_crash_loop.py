"""A module that crashes at every launch: after three failed launches its database is marked failed (503 saying
so, without launching it again) and its owner reads why in its log; republishing a fixed module brings it back
with every row it had. The victim is unharmed throughout."""

import asyncio

import pytest

from .helpers import (
    Answer,
    Client,
    Database,
    VictimProbe,
    assert_victim_intact,
    connect,
    loot,
    module_source,
    publish_attacker,
)

pytestmark = pytest.mark.slow  # real processes or long runs: ./test.sh --fast leaves these out


POISONED = module_source("poisoned")
FIXED = module_source("poisoned_fixed")
FAILED_AFTER = 3  # failed launches in a row before a database is marked failed (the server's default)
LAST_WORDS = "poisoned: this module refuses to start"  # what the module prints before it exits


async def poison_until_failed(client: Client, attacker: Database) -> list[Answer]:
    """Commit a row, poison the database, then access it until it is marked failed; those accesses' answers."""
    assert (await client.call(attacker, "mark", "kept")).status == 200
    answer = await client.call(attacker, "poison")
    assert answer.status == 503 and "exited with status 1" in answer.text, answer
    launches = []
    for _ in range(FAILED_AFTER + 2):  # each access launches the worker again, until the database is failed
        launches.append(await client.call(attacker, "mark", "refused"))
        if "republish" in launches[-1].text:
            break
    return launches


def test_database_failing_every_launch_is_marked_failed(arena):
    async def scenario():
        async with connect(arena) as client:
            await assert_victim_intact(client, arena)
            attacker = await publish_attacker(client, POISONED, "poisoned")
            async with VictimProbe(client, arena, "a crash loop"):
                launches = await poison_until_failed(client, attacker)
            for n, launch in enumerate(launches, 1):
                print(f"[access {n}] {launch.status} after {launch.seconds:.2f}s: {launch.text}")
            assert len(launches) == FAILED_AFTER + 1, launches
            for launch in launches:
                assert launch.status == 503 and "failed to start" in launch.text, launch
            assert "republish" in launches[-1].text
            # a failed database is not launched again: the refusal is immediate, and says the same
            again = await client.call(attacker, "mark", "refused")
            assert again.status == 503 and "republish" in again.text, again
            assert again.seconds < 1.0, again

            # its owner reads why in the log (written by the server: the worker never got far enough)
            messages = [record["message"] for record in await client.logs(attacker)]
            failures = [message for message in messages if "failed to start" in message]
            assert len(failures) == FAILED_AFTER, messages
            for failure in failures:
                assert "exited with status 1" in failure and LAST_WORDS in failure, failure
            assert "marked failed" in failures[-1]
            print(f"[log] {failures[-1]}")
            # and nobody else may republish it
            answer, _ = await client.publish(attacker.name, FIXED, arena.stranger)
            assert answer.status == 403, answer
            await assert_victim_intact(client, arena)

    asyncio.run(scenario())


def test_republishing_a_fixed_module_revives_a_failed_database(arena):
    async def scenario():
        async with connect(arena) as client:
            await assert_victim_intact(client, arena)
            attacker = await publish_attacker(client, POISONED, "revived")
            await poison_until_failed(client, attacker)
            answer, _ = await client.publish(attacker.name, FIXED, attacker.owner)
            print(f"[republish] {answer.status} after {answer.seconds:.2f}s: {answer.text}")
            assert answer.status == 200, answer
            assert (await client.call(attacker, "mark", "after")).status == 200
            assert (await loot(client, attacker))["mark"] == ["kept", "after"]
            await assert_victim_intact(client, arena)

    asyncio.run(scenario())
