"""Crashes, exhaustion and hangs, in a reducer and in a module's top-level code.

A reducer that crashes its worker gets a clear answer (503 with the reason), its database restarts on the next
access with every acknowledged row, the death is in its module log, and the victim is answered quickly
throughout. A failure that Python can catch (SystemExit, MemoryError, a pure-Python loop past its budget) is
just a failed call and the worker lives on. Module code cannot switch off the deadlines it runs under. A module
whose top-level code crashes or hangs is refused by publish (400) within its load budget + grace and never
stored, while the server keeps answering.
"""

import asyncio
import json
import os
import textwrap
from dataclasses import dataclass

import pytest

from .helpers import (
    Client,
    Database,
    PingProbe,
    VictimProbe,
    assert_victim_intact,
    connect,
    loot,
    module_source,
    publish_attacker,
    worker_pid,
)

pytestmark = pytest.mark.slow  # real processes or long runs: ./test.sh --fast leaves these out


CRASHES = module_source("crashes")
# how much later than the hard deadline a killed call may answer (the supervisor polls ten times a second)
KILL_SLACK = 3.0


@dataclass(frozen=True)
class Crash:
    reducer: str
    status: int
    reason: str  # what the answer must say
    restarts: bool  # whether the worker dies (and its database restarts from disk on the next access)
    deadline: bool = False  # stopped by the hard deadline (budget + grace)


CRASH_CASES = [
    Crash("exit_process", 503, "exited with status 0", restarts=True),
    Crash("raise_system_exit", 530, "SystemExit", restarts=False),
    Crash("segfault", 503, "SIGSEGV", restarts=True),
    Crash("kill_itself", 503, "SIGKILL", restarts=True),
    Crash("allocate_3_gib", 530, "MemoryError", restarts=False),
    Crash("backtrack", 503, "time budget", restarts=True, deadline=True),
    Crash("sleep_a_minute", 503, "time budget", restarts=True, deadline=True),
    Crash("spin", 402, "time budget", restarts=False),
    Crash("spin_swallowing_timeouts", 503, "time budget", restarts=True, deadline=True),
    Crash("garble_channel", 503, "protocol", restarts=True),
]


async def mark(client: Client, attacker: Database, text: str) -> None:
    answer = await client.call(attacker, "mark", text)
    assert answer.status == 200, answer


async def marks(client: Client, attacker: Database) -> list[str]:
    return (await loot(client, attacker)).get("mark", [])


@pytest.mark.parametrize("crash", CRASH_CASES, ids=lambda crash: crash.reducer)
def test_reducer_crash_harms_only_its_own_database(arena, crash):
    async def scenario():
        async with connect(arena) as client:
            await assert_victim_intact(client, arena)
            attacker = await publish_attacker(client, CRASHES, "crash")
            await mark(client, attacker, "before")
            pid = await worker_pid(client, attacker)
            async with VictimProbe(client, arena, crash.reducer):  # through the crash and the restart
                answer = await client.call(attacker, crash.reducer, timeout=arena.hard_deadline + 30)
                # the next access relaunches a dead worker from disk
                restarted = await client.call(attacker, "mark", "after")
            print(f"[{crash.reducer}] {answer.status} after {answer.seconds:.2f}s: {answer.text}")
            print(
                f"[{crash.reducer}] the next call answered {restarted.status} after {restarted.seconds:.2f}s"
            )
            assert answer.status == crash.status, answer
            assert crash.reason in answer.text, answer
            if crash.deadline:
                assert arena.hard_deadline <= answer.seconds < arena.hard_deadline + KILL_SLACK, answer
            else:
                assert answer.seconds < arena.hard_deadline, answer
            assert restarted.status == 200, restarted
            # the row committed before the crash is still there
            assert await marks(client, attacker) == ["before", "after"]
            assert (await worker_pid(client, attacker) != pid) == crash.restarts
            await assert_victim_intact(client, arena)

    asyncio.run(scenario())


@pytest.mark.parametrize("reducer", ["exit_process", "segfault", "sleep_a_minute"])
def test_worker_death_is_written_to_the_module_log(arena, reducer):
    async def scenario():
        async with connect(arena) as client:
            await assert_victim_intact(client, arena)
            attacker = await publish_attacker(client, CRASHES, "logged")
            answer = await client.call(attacker, reducer, timeout=arena.hard_deadline + 30)
            assert answer.status == 503, answer
            reason = answer.text.removeprefix("the database stopped: ").split("; it restarts")[0]
            logged = [record["message"] for record in await client.logs(attacker)]
            await assert_victim_intact(client, arena)
            assert any("worker stopped" in message and reason in message for message in logged), (
                reason,
                logged,
            )

    asyncio.run(scenario())


def test_reducer_cannot_disarm_its_own_deadline(arena):
    async def scenario():
        async with connect(arena) as client:
            await assert_victim_intact(client, arena)
            attacker = await publish_attacker(client, CRASHES, "disarm")
            spin = arena.hard_deadline + 6  # bounded, so that the attack ends even where it works
            async with VictimProbe(client, arena, "a reducer with its deadline disarmed"):
                answer = await client.call(
                    attacker, "disarm_deadline_and_spin", spin, timeout=arena.hard_deadline + 30
                )
            print(f"[disarm_deadline_and_spin] {answer.status} after {answer.seconds:.2f}s: {answer.text}")
            if answer.status == 530:
                raise RuntimeError(
                    f"the attack itself failed (it reaches into worker internals): {answer.text}"
                )
            await assert_victim_intact(client, arena)
            assert answer.status == 503, answer
            assert "time budget" in answer.text, answer
            assert answer.seconds < arena.hard_deadline + KILL_SLACK, answer

    asyncio.run(scenario())


# ---- top-level code -------------------------------------------------------------------------------------------------

TOP_LEVEL = {
    "infinite loop": ("while True:\n    pass\n", "time budget"),
    "swallowed timeouts": (
        "while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass\n",
        "time budget",
    ),
    "sleep": ("import time\ntime.sleep(60)\n", "time budget"),
    "os._exit(0)": ("import os\nos._exit(0)\n", "exited with status 0"),
    "os._exit(3)": ("import os\nos._exit(3)\n", "exited with status 3"),
    "segfault": ("import ctypes\nctypes.string_at(0)\n", "SIGSEGV"),
    "deadline disarmed": (
        """
        import gc
        import time
        from spacetimedb.host.watchdog import CallClock
        from spacetimedb.protocol.deadline import DeadlineSlot
        for thing in gc.get_objects():
            if isinstance(thing, DeadlineSlot):
                thing.disarm()
            elif isinstance(thing, CallClock):
                thing.deadline = 0  # "no call in progress"
        started = time.monotonic()
        while time.monotonic() - started < 8:  # bounded, so that the attack ends even where it works
            pass
        """,
        "time budget",
    ),
}


def _crashing_module(code: str) -> bytes:
    """The crash module with ``code`` appended, run when the module is loaded."""
    return CRASHES + b"\n\n" + textwrap.dedent(code).encode()


@pytest.mark.parametrize(
    "case",
    sorted(TOP_LEVEL),
)
def test_publish_refuses_a_module_whose_top_level_code_crashes(arena, case):
    code, reason = TOP_LEVEL[case]
    databases = arena.data_dir / "databases"

    async def scenario():
        async with connect(arena) as client:
            await assert_victim_intact(client, arena)
            publisher = await client.new_account()
            existing = set(os.listdir(databases))
            name = f"toplevel-{os.urandom(4).hex()}"
            pings = PingProbe(client)
            async with pings, VictimProbe(client, arena, f"publishing {case}"):
                answer, _ = await client.publish(
                    name, _crashing_module(code), publisher, timeout=arena.load_deadline + 30
                )
            print(f"[top-level {case}] {answer.status} after {answer.seconds:.2f}s: {answer.text}")
            if "error while importing" in answer.text:
                raise RuntimeError(f"the module does not even import: {answer.text}")
            print(
                f"[top-level {case}] {len(pings.latencies)} pings, max {max(pings.latencies) * 1000:.0f} ms"
            )
            assert answer.status == 400, answer
            assert reason in answer.text, answer
            assert answer.seconds < arena.load_deadline + KILL_SLACK, answer
            # never stored
            assert (await client.request("GET", f"/v1/database/{name}")).status == 404
            owned = await client.request("GET", f"/v1/identity/{publisher.identity}/databases")
            assert json.loads(owned.text)["identities"] == []
            assert set(os.listdir(databases)) == existing
            await assert_victim_intact(client, arena)

    asyncio.run(scenario())
