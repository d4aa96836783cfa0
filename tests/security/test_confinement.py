"""Attacks that try to leave the worker: opening sockets (to the server itself, too), spawning processes,
starting threads. Each fails inside the module, nothing it tried to start ever runs, and its database and the
victim keep working."""

import asyncio
import os

import pytest

from .helpers import (
    assert_victim_intact,
    connect,
    loot,
    module_source,
    poll,
    publish_attacker,
    worker_pid,
)

pytestmark = pytest.mark.slow  # real processes or long runs: ./test.sh --fast leaves these out


ESCAPE = module_source("escape")
OPERATION_NOT_PERMITTED = "Operation not permitted"  # the text of a PermissionError (EPERM, from seccomp)
# how long code that escaped (a child process, a thread) gets to leave its marker before we conclude it never ran
ESCAPE_WINDOW = 1.0


@pytest.mark.parametrize(
    "reducer", ["open_tcp_socket", "connect_to_server", "open_socket_pair", "open_udp_socket"]
)
def test_module_cannot_open_sockets(arena, reducer):
    async def scenario():
        async with connect(arena) as client:
            await assert_victim_intact(client, arena)
            attacker = await publish_attacker(client, ESCAPE, "socket")
            args = [arena.server.port] if reducer in ("connect_to_server", "open_udp_socket") else []
            answer = await client.call(attacker, reducer, *args)
            assert answer.status == 530, answer
            assert OPERATION_NOT_PERMITTED in answer.text, answer
            assert await loot(client, attacker) == {}
            await assert_victim_intact(client, arena)

    asyncio.run(scenario())


@pytest.mark.parametrize("reducer", ["run_id", "run_subprocess", "fork", "posix_spawn", "exec_program"])
def test_module_cannot_spawn_processes(arena, reducer):
    async def scenario():
        async with connect(arena) as client:
            await assert_victim_intact(client, arena)
            attacker = await publish_attacker(client, ESCAPE, "spawn")
            marker = arena.database_dir(attacker) / "escaped"
            pid = await worker_pid(client, attacker)
            answer = await client.call(attacker, reducer, str(marker))
            assert answer.status == 530, answer
            assert OPERATION_NOT_PERMITTED in answer.text, answer
            assert not await poll(lambda: _exists(marker), ESCAPE_WINDOW), "the spawned process ran"
            assert (await loot(client, attacker)).keys() == {"pid"}
            assert await worker_pid(client, attacker) == pid  # the worker was neither replaced nor restarted
            await assert_victim_intact(client, arena)

    asyncio.run(scenario())


def test_os_system_runs_nothing(arena):
    async def scenario():
        async with connect(arena) as client:
            await assert_victim_intact(client, arena)
            attacker = await publish_attacker(client, ESCAPE, "system")
            marker = arena.database_dir(attacker) / "escaped"
            answer = await client.call(attacker, "shell", str(marker))
            assert answer.status == 200, answer  # os.system reports failure in its status only
            [status] = (await loot(client, attacker))["os.system"]
            assert int(status) != 0
            assert not await poll(lambda: _exists(marker), ESCAPE_WINDOW), "the shell ran"
            await assert_victim_intact(client, arena)

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("way", "refusal"),
    [
        ("threading.Thread", "can't start new thread"),
        ("_thread.start_new_thread", "can't start new thread"),
        ("ThreadPoolExecutor", "can't start new thread"),
        ("pthread_create", OPERATION_NOT_PERMITTED),
    ],
)
def test_module_cannot_start_threads(arena, way, refusal):
    async def scenario():
        async with connect(arena) as client:
            await assert_victim_intact(client, arena)
            attacker = await publish_attacker(client, ESCAPE, "thread")
            marker = arena.database_dir(attacker) / "escaped"
            pid = await worker_pid(client, attacker)
            tasks = _kernel_threads(pid)
            assert (await client.call(attacker, "list_threads")).status == 200
            answer = await client.call(attacker, "start_thread", way, str(marker))
            assert answer.status == 530, answer
            assert refusal in answer.text, answer
            assert not await poll(lambda: _exists(marker), ESCAPE_WINDOW), "the thread ran"
            # no thread survives: the kernel sees the same threads in the worker, and so does Python
            assert _kernel_threads(pid) == tasks
            assert (await client.call(attacker, "list_threads")).status == 200
            [before, after] = (await loot(client, attacker))["threads"]
            assert before == after
            assert await worker_pid(client, attacker) == pid
            await assert_victim_intact(client, arena)

    asyncio.run(scenario())


async def _exists(path) -> bool:
    return path.exists()


def _kernel_threads(pid: int) -> set[str]:
    return set(os.listdir(f"/proc/{pid}/task"))
