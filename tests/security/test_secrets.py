"""Attacks on secrets: a module reads the server's signing key, another database's commitlog, the control
database, the server's memory and environment; and forges tokens without the key."""

import asyncio
import json
from pathlib import Path

import jwt
import pytest

from .helpers import (
    CANARY_VARIABLE,
    Arena,
    Client,
    Database,
    assert_victim_intact,
    connect,
    loot,
    module_source,
    publish_attacker,
)

pytestmark = pytest.mark.slow  # real processes or long runs: ./test.sh --fast leaves these out


SNOOP = module_source("snoop")
FIRST_SEGMENT = "00000000000000000000.stdb.log"


def signing_key(arena: Arena) -> Path:
    return arena.data_dir / "keys" / "id_ecdsa"


def victim_commitlog(arena: Arena) -> Path:
    return arena.database_dir(arena.victim) / "clog" / FIRST_SEGMENT


def control_commitlog(arena: Arena) -> Path:
    return arena.data_dir / "control" / "clog" / FIRST_SEGMENT


def server_environment(arena: Arena) -> Path:
    return Path(f"/proc/{arena.server.process.pid}/environ")


def server_memory(arena: Arena) -> Path:
    return Path(f"/proc/{arena.server.process.pid}/mem")


def secret_in(arena: Arena, target) -> str | None:
    """What ``target`` holds that no module may see (None where a plain read cannot show it)."""
    if target is signing_key:
        return "PRIVATE KEY"
    if target is victim_commitlog:
        return arena.secret
    if target is server_environment:
        return arena.canary
    if target is control_commitlog:
        return arena.victim.name  # the names of the databases (and their owners)
    return None


PERMISSION_DENIED = "Permission denied"  # the text of a PermissionError (EACCES)


@pytest.mark.parametrize(
    ("target", "reducer", "refusal"),
    [
        (signing_key, "read_file", PERMISSION_DENIED),
        (signing_key, "read_through_symlink", PERMISSION_DENIED),
        # Landlock refuses a link that would give a file more rights than it has where it is: EXDEV
        (signing_key, "read_through_hard_link", "Invalid cross-device link"),
        (signing_key, "read_through_proc_root", PERMISSION_DENIED),
        (victim_commitlog, "read_file", PERMISSION_DENIED),
        (control_commitlog, "read_file", PERMISSION_DENIED),
        (server_environment, "read_file", PERMISSION_DENIED),
        (server_memory, "read_file", PERMISSION_DENIED),
    ],
    ids=lambda value: getattr(value, "__name__", value) if callable(value) else None,
)
def test_module_cannot_read_files_outside_its_database(arena, target, reducer, refusal):
    path = target(arena)
    secret = secret_in(arena, target)
    if secret is not None:  # the target really holds what the attack is after
        assert secret in path.read_bytes().decode("latin-1")

    async def scenario():
        async with connect(arena) as client:
            await assert_victim_intact(client, arena)
            attacker = await publish_attacker(client, SNOOP, "snoop")
            answer = await client.call(attacker, reducer, str(path))
            assert answer.status == 530, answer
            assert refusal in answer.text, answer
            assert await loot(client, attacker) == {}
            if secret is not None:
                assert secret not in answer.text
            await assert_victim_intact(client, arena)

    asyncio.run(scenario())


def test_module_cannot_see_the_server_environment(arena):
    environ = server_environment(arena).read_bytes().split(b"\0")
    assert f"{CANARY_VARIABLE}={arena.canary}".encode() in environ  # the secret is there to steal

    async def scenario():
        async with connect(arena) as client:
            await assert_victim_intact(client, arena)
            attacker = await publish_attacker(client, SNOOP, "environ")
            answer = await client.call(attacker, "steal_environment")
            assert answer.status == 200, answer
            stolen = await loot(client, attacker)
            print(f"[environment seen by a module] {stolen['os.environ']}")
            server_pid = arena.server.process.pid  # the worker's parent
            assert set(stolen) == {
                "os.environ",
                "/proc/1/environ",
                "/proc/self/environ",
                f"/proc/{server_pid}/environ",
            }
            everything = json.dumps(stolen)
            assert arena.canary not in everything
            for path, [data] in stolen.items():
                if path.startswith("/proc/"):
                    assert data.startswith("refused: ") and "Permission denied" in data, (path, data)
            logs = json.dumps(await client.logs(attacker))
            assert arena.canary not in logs
            await assert_victim_intact(client, arena)

    asyncio.run(scenario())


async def _refused_everywhere(client: Client, arena: Arena, token: str) -> None:
    """``token`` claims to be the victim's owner: the server must refuse it for every owner action."""
    victim = arena.victim
    bearer = {"Authorization": f"Bearer {token}"}
    for method, path, body in [
        ("GET", f"/v1/identity/{victim.owner.identity}/verify", None),
        ("POST", f"/v1/database/{victim.name}/sql", "SELECT value FROM secret"),
        ("GET", f"/v1/database/{victim.name}/logs?num_lines=10", None),
        ("DELETE", f"/v1/database/{victim.name}", None),
    ]:
        answer = await client.request(method, path, headers=bearer, data=body)
        assert answer.status == 401, (method, path, answer)
        assert arena.secret not in answer.text


def test_tokens_a_module_can_mint_are_refused(arena):
    async def scenario():
        async with connect(arena) as client:
            await assert_victim_intact(client, arena)
            victim: Database = arena.victim
            # the worst case: the attacker knows everything about the owner's token but the server's key
            claims = jwt.decode(victim.owner.token, options={"verify_signature": False})
            public_key = (await client.request("GET", "/v1/identity/public-key")).text
            genuine = await client.request(
                "GET", f"/v1/identity/{victim.owner.identity}/verify", victim.owner
            )
            assert genuine.status == 204, genuine  # the check below would notice a forgery that worked
            attacker = await publish_attacker(client, SNOOP, "forger")
            answer = await client.call(
                attacker, "forge_tokens", victim.owner.identity, claims["sub"], claims["iss"], public_key
            )
            assert answer.status == 200, answer
            forged = await loot(client, attacker)
            assert set(forged) == {
                "signed with a fresh ES256 key",
                "alg none",
                "HS256 keyed with the public key",
            }
            for [token] in forged.values():
                assert jwt.decode(token, options={"verify_signature": False})["hex_identity"] == (
                    victim.owner.identity
                )
                await _refused_everywhere(client, arena, token)
            await assert_victim_intact(client, arena)

    asyncio.run(scenario())
