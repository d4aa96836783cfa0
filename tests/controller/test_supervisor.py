"""The supervisor against real server processes: what happens to a database's clients and requests when its
worker dies or overruns, who may create databases, subscriptions that leave nothing behind, workers that never
outlive their server."""

import asyncio
import os
import signal
import time
from pathlib import Path

import aiohttp
import pytest

from spacetimedb.protocol import v2
from tests.conftest import start_server
from tests.server.test_e2e import CHAT
from tests.server.wsclient import ENCODE_STR, RawClient

pytestmark = pytest.mark.slow  # real processes or long runs: ./test.sh --fast leaves these out


HOSTILE = b"""
import os, time
from typing import Annotated
from spacetimedb import table, reducer, ReducerContext, PrimaryKey, u32

@table(public=True)
class Note:
    id: Annotated[u32, PrimaryKey]

@reducer
def note(ctx: ReducerContext, id: u32) -> None:
    ctx.db.note.insert(Note(id=id))

@reducer
def exit_now(ctx: ReducerContext) -> None:
    os._exit(3)

@reducer
def sleep_long(ctx: ReducerContext) -> None:
    time.sleep(60)

@reducer
def pause(ctx: ReducerContext, milliseconds: u32) -> None:
    time.sleep(milliseconds / 1000)
"""


def run(coro):
    return asyncio.run(coro)


async def identity(http, url):
    response = await http.post(f"{url}/v1/identity")
    body = await response.json()
    return body["identity"], {"Authorization": f"Bearer {body['token']}"}


async def publish(http, url, name, program, auth):
    response = await http.put(f"{url}/v1/database/{name}", data=program, headers=auth)
    return response.status, await response.text()


async def call(http, url, name, reducer, *args, auth=None):
    response = await http.post(
        f"{url}/v1/database/{name}/call/{reducer}", json=list(args), headers=auth or {}
    )
    return response.status, await response.text()


async def sql(http, url, name, query, auth):
    response = await http.post(f"{url}/v1/database/{name}/sql", data=query, headers=auth)
    assert response.status == 200, await response.text()
    return (await response.json())[0]["rows"]


def worker_pids(server_pid: int) -> set[int]:
    """The worker processes the server has spawned (its children running spacetimedb.host.worker)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                command = cmdline.read()
        except OSError:
            continue
        if parent == server_pid and b"spacetimedb.host.worker" in command:
            found.add(int(entry))
    return found


@pytest.fixture
def fast_server(tmp_path):
    server = start_server(tmp_path / "data", extra_args=["--reducer-budget", "1", "--hard-grace", "1"])
    yield server
    server.stop()


async def hostile_with_a_note(http: aiohttp.ClientSession, url: str) -> dict[str, str]:
    """Publish HOSTILE as a new identity and note 1 in it; the owner's headers."""
    _, auth = await identity(http, url)
    assert (await publish(http, url, "hostile", HOSTILE, auth))[0] == 200
    assert (await call(http, url, "hostile", "note", 1, auth=auth))[0] == 200
    return auth


def test_a_killed_worker_closes_its_clients_with_the_reason_and_they_can_reconnect(fast_server):
    url = fast_server.url

    async def scenario():
        async with aiohttp.ClientSession() as http:
            auth = await hostile_with_a_note(http, url)
            watcher, _ = await RawClient.connect(http, url, "hostile")
            started = time.monotonic()
            status, text = await call(http, url, "hostile", "sleep_long", auth=auth)
            waited = time.monotonic() - started
            assert status == 503 and "time budget" in text and "sleep_long" in text, (status, text)
            assert waited < 30
            closed = await asyncio.wait_for(watcher.ws.receive(), 10)
            assert closed.type == aiohttp.WSMsgType.CLOSE
            assert closed.data == 1011 and "time budget" in closed.extra
            # the next access relaunches the database from disk: what was acknowledged is there
            again, _ = await RawClient.connect(http, url, "hostile")
            await again.call("note", (2).to_bytes(4, "little"))
            result = await again.next_of(v2.REDUCER_RESULT)
            assert result.value[2].tag == v2.OUTCOME_OK
            assert sorted(r[0] for r in await sql(http, url, "hostile", "SELECT * FROM note", auth)) == [1, 2]
            await again.ws.close()

    run(scenario())


def test_a_request_in_flight_when_the_worker_dies_answers_503(fast_server):
    url = fast_server.url

    async def scenario():
        async with aiohttp.ClientSession() as http:
            _, auth = await identity(http, url)
            await publish(http, url, "hostile", HOSTILE, auth)
            status, text = await call(http, url, "hostile", "exit_now", auth=auth)
            assert status == 503 and "exited with status 3" in text, (status, text)
            assert (await call(http, url, "hostile", "note", 5, auth=auth))[0] == 200

    run(scenario())


def test_frames_queued_for_a_client_that_hung_up_do_not_count_as_stalled_work(fast_server):
    """A client sends calls behind a slow one and hangs up: the worker skips them, and the supervisor, which
    counts the work it sent, must hear they are done, or it kills an idle worker as stalled."""
    url = fast_server.url

    async def scenario():
        async with aiohttp.ClientSession() as http:
            auth = await hostile_with_a_note(http, url)
            workers = worker_pids(fast_server.process.pid)
            leaver, _ = await RawClient.connect(http, url, "hostile")
            await leaver.call("pause", (500).to_bytes(4, "little"))
            for id in range(2, 22):
                await leaver.call("note", id.to_bytes(4, "little"))
            await leaver.ws.close()
            await asyncio.sleep(6)  # longer than the no-progress allowance (1 s budget + 1 s grace + 2 s)
            assert worker_pids(fast_server.process.pid) == workers
            assert (await call(http, url, "hostile", "note", 100, auth=auth))[0] == 200

    run(scenario())


def test_a_server_held_up_past_the_stall_allowance_kills_no_worker_that_answered_meanwhile(fast_server):
    """The server process is stopped (SIGSTOP) while a call runs, for longer than the no-progress allowance, and
    the worker answers meanwhile: resumed, the server must count that answer before it judges the worker."""
    url = fast_server.url
    pid = fast_server.process.pid

    async def scenario():
        async with aiohttp.ClientSession() as http:
            auth = await hostile_with_a_note(http, url)
            workers = worker_pids(pid)
            calling = asyncio.ensure_future(call(http, url, "hostile", "pause", 300, auth=auth))
            await asyncio.sleep(0.2)  # the call is in the worker
            os.kill(pid, signal.SIGSTOP)
            try:
                await asyncio.sleep(6)  # longer than the no-progress allowance (1 s budget + 1 s grace + 2 s)
            finally:
                os.kill(pid, signal.SIGCONT)
            assert (await calling)[0] == 200
            await asyncio.sleep(0.5)  # a few deadline polls
            assert worker_pids(pid) == workers
            assert (await call(http, url, "hostile", "note", 100, auth=auth))[0] == 200

    run(scenario())


# its ``disarm_deadline_and_spin`` clears the deadlines its worker arms, then spins
CRASHES = (Path(__file__).parents[1] / "security" / "modules" / "crashes.py").read_bytes()


def test_a_worker_killed_for_stalling_leaves_its_threads_stacks_in_the_server_log(tmp_path):
    """Module code that switched its time limits off is stopped by the no-progress rule; before the kill, the
    supervisor has the worker print its threads' stacks, and logs them: where a stalled worker was stuck."""
    log_path = tmp_path / "server.log"
    server = start_server(
        tmp_path / "data", extra_args=["--reducer-budget", "1", "--hard-grace", "1"], log_path=log_path
    )
    try:

        async def scenario():
            async with aiohttp.ClientSession() as http:
                _, auth = await identity(http, server.url)
                assert (await publish(http, server.url, "stalling", CRASHES, auth))[0] == 200
                started = time.monotonic()
                status, text = await call(
                    http, server.url, "stalling", "disarm_deadline_and_spin", 20, auth=auth
                )
                assert status == 503 and "finished nothing for 4s" in text, (status, text)
                assert time.monotonic() - started < 15  # not the 20 s the spin would take
                assert (await call(http, server.url, "stalling", "mark", "after", auth=auth))[0] == 200

        run(scenario())
    finally:
        server.stop()
    logged = log_path.read_text()
    assert "was stopped for stalling (work waiting: 1); its threads were at:" in logged, logged
    dump = logged.split("its threads were at:", 1)[1]
    assert "in disarm_deadline_and_spin" in dump and "Thread 0x" in dump, dump


def test_only_listed_publishers_create_databases(tmp_path):
    async def identities(url):
        async with aiohttp.ClientSession() as http:
            return [await identity(http, url) for _ in range(2)]

    probe = start_server(tmp_path / "probe")
    try:
        (alice, alice_auth), (_, bob_auth) = run(identities(probe.url))
    finally:
        probe.stop()
    # identities are signed by the server's key: keep the directory's keys for the second server
    (tmp_path / "data").mkdir()
    (tmp_path / "probe" / "keys").rename(tmp_path / "data" / "keys")
    server = start_server(tmp_path / "data", extra_args=["--publishers", alice])
    try:

        async def scenario():
            async with aiohttp.ClientSession() as http:
                assert (await publish(http, server.url, "alices", CHAT, alice_auth))[0] == 200
                status, text = await publish(http, server.url, "bobs", CHAT, bob_auth)
                assert status == 403 and "may not create databases" in text
                status, _ = await publish(http, server.url, "anonymous", CHAT, {})
                assert status == 403
                assert (await publish(http, server.url, "alices", CHAT + b"\n# v2\n", alice_auth))[0] == 200
                assert (await publish(http, server.url, "alices", CHAT, bob_auth))[0] == 403

        run(scenario())
    finally:
        server.stop()


def test_clients_that_subscribe_and_close_leave_nothing_behind(server):
    url = server.url
    clients = 3000

    async def one(http, semaphore):
        async with semaphore:
            ws = await http.ws_connect(
                f"{url}/v1/database/chat/subscribe?compression=None".replace("http", "ws", 1),
                protocols=[v2.PROTOCOL_V2],
            )
            await ws.receive()  # InitialConnection
            await ws.send_bytes(v2.encode_client_message(v2.SUBSCRIBE, 1, (1,), ("SELECT * FROM message",)))
            await ws.close()  # at once, possibly before the subscription was even applied

    async def scenario():
        async with aiohttp.ClientSession() as http:
            _, auth = await identity(http, url)
            assert (await publish(http, url, "chat", CHAT, auth))[0] == 200
            semaphore = asyncio.Semaphore(64)
            await asyncio.gather(*(one(http, semaphore) for _ in range(clients)))
            deadline = time.monotonic() + 60
            while True:
                response = await http.get(f"{url}/v1/database/chat/unstable/stats", headers=auth)
                stats = await response.json()
                if stats["clients"] == 0 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            assert stats == {
                **stats,
                "clients": 0,
                "subscribed_clients": 0,
                "query_sets": 0,
                "distinct_queries": 0,
            }
            # and the database still works for a new subscriber
            watcher, _ = await RawClient.connect(http, url, "chat")
            await watcher.subscribe(1, "SELECT * FROM message")
            await watcher.next_of(v2.SUBSCRIBE_APPLIED)
            await watcher.call("send_message", ENCODE_STR("after the crowd"))
            assert (await watcher.next_of(v2.REDUCER_RESULT)).value[2].tag == v2.OUTCOME_OK
            await watcher.ws.close()

    run(scenario())


def test_stats_are_for_the_owner_only(server):
    async def scenario():
        async with aiohttp.ClientSession() as http:
            _, auth = await identity(http, server.url)
            _, other = await identity(http, server.url)
            await publish(http, server.url, "chat", CHAT, auth)
            response = await http.get(f"{server.url}/v1/database/chat/unstable/stats", headers=other)
            assert response.status == 403
            response = await http.get(f"{server.url}/v1/database/chat/unstable/stats")
            assert response.status == 401

    run(scenario())


def test_workers_never_outlive_a_killed_server(tmp_path):
    server = start_server(tmp_path / "data")
    try:

        async def scenario():
            async with aiohttp.ClientSession() as http:
                _, auth = await identity(http, server.url)
                for name in ("one", "two"):
                    assert (await publish(http, server.url, name, CHAT, auth))[0] == 200
                    assert (await call(http, server.url, name, "send_message", "kept", auth=auth))[0] == 200

        run(scenario())
        workers = worker_pids(server.process.pid)
        assert len(workers) == 2
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(10)
        deadline = time.monotonic() + 10
        while any(os.path.exists(f"/proc/{pid}") for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(os.path.exists(f"/proc/{pid}") for pid in workers)
    finally:
        server.stop()
    again = start_server(tmp_path / "data")  # every directory lock was released with its worker
    try:

        async def check():
            async with aiohttp.ClientSession() as http:
                for name in ("one", "two"):
                    response = await http.post(
                        f"{again.url}/v1/database/{name}/sql", data="SELECT * FROM message"
                    )
                    rows = (await response.json())[0]["rows"]
                    assert [r[3] for r in rows] == ["kept"]

        run(check())
    finally:
        again.stop()


def test_an_in_memory_database_is_gone_with_its_worker(tmp_path):
    server = start_server(None)
    try:

        async def scenario():
            async with aiohttp.ClientSession() as http:
                _, auth = await identity(http, server.url)
                assert (await publish(http, server.url, "fleeting", HOSTILE, auth))[0] == 200
                assert (await call(http, server.url, "fleeting", "note", 1, auth=auth))[0] == 200
                status, _ = await call(http, server.url, "fleeting", "exit_now", auth=auth)
                assert status == 503
                status, _ = await call(http, server.url, "fleeting", "note", 2, auth=auth)
                assert status == 404

        run(scenario())
    finally:
        server.stop()
