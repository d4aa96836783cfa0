"""A module links its own log files to files outside its database, then stops its worker, hoping that whoever
reads or writes the log of a stopped database follows the links: nobody may read the server's key or another
database's data for the module's owner, nor append to a file outside the database. (The server never opens a
database's files itself; a throw-away worker confined to the directory reads the log.)"""

import asyncio
import uuid

import pytest

from .helpers import assert_victim_intact, connect, module_source, publish_attacker

pytestmark = pytest.mark.slow  # real processes or long runs: ./test.sh --fast leaves these out


LOG_LINKS = module_source("log_links")
FIRST_SEGMENT = "00000000000000000000.stdb.log"


@pytest.mark.parametrize("target", ["signing key", "victim commitlog"])
def test_server_reads_no_file_a_module_links_into_its_log(arena, target):
    # relative to the module's module_logs/ directory: no knowledge of the server's paths is needed
    link, secret = {
        "signing key": ("../../../keys/id_ecdsa", "PRIVATE KEY"),
        "victim commitlog": (f"../../{arena.victim.identity}/clog/{FIRST_SEGMENT}", arena.secret),
    }[target]

    async def scenario():
        async with connect(arena) as client:
            await assert_victim_intact(client, arena)
            attacker = await publish_attacker(client, LOG_LINKS, "log-link")
            assert (await client.call(attacker, "link_log_file", "previous.log", link)).status == 200
            answer = await client.call(attacker, "exit_process")
            assert answer.status == 503, answer
            logs = await client.request(
                "GET", f"/v1/database/{attacker.name}/logs?num_lines=1000", attacker.owner
            )
            print(f"[{target}] GET /logs answered {logs.status}: {logs.text[:300]!r}")
            assert secret not in logs.text
            await assert_victim_intact(client, arena)

    asyncio.run(scenario())


def test_server_writes_no_file_a_module_links_into_its_log(arena):
    outside = arena.data_dir / f"outside-{uuid.uuid4().hex}.txt"
    outside.write_text("untouched\n")

    async def scenario():
        async with connect(arena) as client:
            await assert_victim_intact(client, arena)
            attacker = await publish_attacker(client, LOG_LINKS, "log-link")
            link = f"../../../{outside.name}"
            assert (await client.call(attacker, "link_log_file", "current.log", link)).status == 200
            answer = await client.call(attacker, "exit_process")
            assert answer.status == 503, answer
            # the server has recorded the worker's death by the time it serves the log
            logs = await client.request(
                "GET", f"/v1/database/{attacker.name}/logs?num_lines=10", attacker.owner
            )
            assert logs.status == 200, logs
            await assert_victim_intact(client, arena)

    asyncio.run(scenario())
    print(f"[outside file] {outside.read_text()!r}")
    assert outside.read_text() == "untouched\n"
