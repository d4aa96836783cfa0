"""HTTP routes: identities and tokens, owner-only routes, call/sql/logs/schema, names."""

import asyncio
import json

import aiohttp
import pytest

from .test_e2e import CHAT

pytestmark = pytest.mark.slow  # real processes or long runs: ./test.sh --fast leaves these out


def run(coro):
    return asyncio.run(coro)


async def new_identity(http, url):
    response = await http.post(f"{url}/v1/identity")
    assert response.status == 200
    body = await response.json()
    assert len(body["identity"]) == 64
    return body["identity"], {"Authorization": f"Bearer {body['token']}"}


def test_identity_and_token_routes(server):
    async def scenario():
        async with aiohttp.ClientSession() as http:
            identity, auth = await new_identity(http, server.url)
            response = await http.get(f"{server.url}/v1/identity/{identity}/verify", headers=auth)
            assert response.status == 204
            response = await http.post(f"{server.url}/v1/identity/websocket-token", headers=auth)
            short = (await response.json())["token"]
            response = await http.get(
                f"{server.url}/v1/identity/{identity}/verify", headers={"Authorization": f"Bearer {short}"}
            )
            assert response.status == 204
            response = await http.get(f"{server.url}/v1/identity/public-key")
            assert b"BEGIN PUBLIC KEY" in await response.read()
            response = await http.post(f"{server.url}/v1/identity/websocket-token")
            assert response.status == 401
            response = await http.post(
                f"{server.url}/v1/identity/websocket-token", headers={"Authorization": "Bearer x.y.z"}
            )
            assert response.status in (400, 401)
            forged = short[:-4] + ("AAAA" if not short.endswith("AAAA") else "BBBB")
            response = await http.get(
                f"{server.url}/v1/identity/{identity}/verify", headers={"Authorization": f"Bearer {forged}"}
            )
            assert response.status == 401 and "Authorization" in await response.text()
            response = await http.get(f"{server.url}/v1/ping")
            assert response.status == 200

    run(scenario())


def test_owner_only_routes_and_publish_flow(server):
    async def scenario():
        async with aiohttp.ClientSession() as http:
            owner, owner_auth = await new_identity(http, server.url)
            _other, other_auth = await new_identity(http, server.url)
            url = f"{server.url}/v1/database/chat"
            response = await http.put(url, data=CHAT, headers=owner_auth)
            body = await response.json()
            assert response.status == 200 and body["Success"]["op"] == "created"
            database = body["Success"]["database_identity"]
            response = await http.get(f"{server.url}/v1/identity/{owner}/databases")
            assert (await response.json())["identities"] == [database]
            assert (await (await http.get(f"{url}/names")).json())["names"] == ["chat"]
            info = await (await http.get(url)).json()
            assert info["owner_identity"]["__identity__"] == "0x" + owner
            # the owner may update; anyone else gets 403
            response = await http.put(url, data=CHAT + b"\n# v2\n", headers=other_auth)
            assert response.status == 403
            response = await http.put(url, data=CHAT + b"\n# v2\n", headers=owner_auth)
            assert (await response.json())["Success"]["op"] == "updated"
            for method, path in [("GET", "/logs"), ("DELETE", ""), ("PUT", "/names")]:
                response = await http.request(method, url + path, headers=other_auth, data=b'["x"]')
                assert response.status == 403, (method, path)
                response = await http.request(method, url + path, data=b'["x"]')
                assert response.status == 401, (method, path)
            # a broken module is refused with the declaration named
            response = await http.put(
                f"{server.url}/v1/database/broken", data=b"def oops(:\n", headers=owner_auth
            )
            assert response.status == 400 and "Failed to create" in await response.text()
            response = await http.put(f"{server.url}/v1/database/Bad_Name", data=CHAT, headers=owner_auth)
            assert response.status == 400
            response = await http.delete(url, headers=owner_auth)
            assert response.status == 200
            assert (await http.get(url)).status == 404

    run(scenario())


def test_call_sql_logs_schema(server):
    async def scenario():
        async with aiohttp.ClientSession() as http:
            _owner, auth = await new_identity(http, server.url)
            _, other_auth = await new_identity(http, server.url)
            url = f"{server.url}/v1/database/chat"
            assert (await http.put(url, data=CHAT, headers=auth)).status == 200
            response = await http.post(f"{url}/call/send_message", json=["hi"], headers=auth)
            assert response.status == 200
            response = await http.post(f"{url}/call/set_name", json=[""], headers=auth)
            assert response.status == 530 and await response.text() == "ValueError: Names must not be empty"
            response = await http.post(f"{url}/call/nope", json=[], headers=auth)
            assert response.status == 404
            response = await http.post(f"{url}/call/send_message", json=[1, 2], headers=auth)
            assert response.status == 400
            response = await http.post(f"{url}/call/send_message", data="x", headers=auth)
            assert response.status == 415
            response = await http.post(f"{url}/call/on_connect", json=[], headers=auth)
            assert response.status == 400
            response = await http.post(f"{url}/call/send_message", json={"text": "by name"})
            assert response.status == 200 and len(response.headers["spacetime-identity"]) == 64
            response = await http.post(f"{url}/sql", data="SELECT text FROM message", headers=other_auth)
            rows = (await response.json())[0]["rows"]
            assert sorted(r[0] for r in rows) == ["by name", "hi"]
            response = await http.post(f"{url}/sql", data="DELETE FROM message", headers=other_auth)
            assert response.status == 400
            response = await http.post(
                f"{url}/sql?confirmed=true", data="DELETE FROM message WHERE text = 'hi'", headers=auth
            )
            assert response.status == 200 and (await response.json())[0]["stats"]["rows_deleted"] == 1
            response = await http.post(f"{url}/sql", data="SELEC nonsense", headers=auth)
            assert response.status == 400
            response = await http.get(f"{url}/logs?num_lines=50", headers=auth)
            lines = [json.loads(line) for line in (await response.text()).splitlines()]
            assert any(
                r["message"].startswith("ValueError: Names must not be empty\nTraceback")
                and r["level"] == "Error"
                for r in lines
            )
            response = await http.get(f"{url}/schema?version=9")
            schema = await response.json()
            assert sorted(t["name"] for t in schema["tables"]) == ["message", "user"]
            # upstream serves V9 and V10 (what its `describe --json` asks for), and names what it refuses
            response = await http.get(f"{url}/schema?version=10")
            sections = [next(iter(section)) for section in (await response.json())["sections"]]
            assert sections[:3] == ["Typespace", "Types", "Tables"] and sections[-1] == "ExplicitNames"
            response = await http.get(f"{url}/schema?version=11")
            assert response.status == 400
            assert "unknown variant `11`, expected `9` or `10`" in await response.text()
            response = await http.get(f"{url}/schema")
            assert (response.status, await response.text()) == (
                400,
                "Failed to deserialize query string: missing field `version`",
            )

    run(scenario())


def test_logs_follow_streams_new_lines(server):
    async def scenario():
        async with aiohttp.ClientSession() as http:
            _, auth = await new_identity(http, server.url)
            url = f"{server.url}/v1/database/chat"
            assert (await http.put(url, data=CHAT, headers=auth)).status == 200
            response = await http.get(f"{url}/logs?num_lines=0&follow=true", headers=auth)
            assert response.status == 200
            await http.post(f"{url}/call/set_name", json=[""], headers=auth)
            line = await asyncio.wait_for(response.content.readline(), 10)
            assert json.loads(line)["message"].splitlines()[0] == "ValueError: Names must not be empty"
            response.close()

    run(scenario())


GATEKEEPER = b"""
from typing import Annotated
from spacetimedb import table, reducer, ReducerContext, Identity, PrimaryKey, AutoInc, u64

@table(public=True)
class Visit:
    id: Annotated[u64, PrimaryKey, AutoInc]
    who: Identity
    event: str

@table(public=True)
class Banned:
    who: Annotated[Identity, PrimaryKey]

@reducer
def ban(ctx: ReducerContext, who: Identity) -> None:
    ctx.db.banned.insert(Banned(who=who))

@reducer(lifecycle="client_connected")
def hello(ctx: ReducerContext) -> None:
    if ctx.db.banned.who.find(ctx.sender) is not None:
        raise PermissionError("you are banned")
    ctx.db.visit.insert(Visit(id=0, who=ctx.sender, event="connected"))

@reducer(lifecycle="client_disconnected")
def bye(ctx: ReducerContext) -> None:
    ctx.db.visit.insert(Visit(id=0, who=ctx.sender, event="disconnected"))
"""


def test_sql_runs_inside_a_connection_and_a_refusing_module_refuses_it(server):
    """As upstream since its PR #4563 (crates/client-api/src/routes/database.rs, `with_connection`): POST /sql runs
    client_connected before the query and client_disconnected after it; a refusal is a 403 and no query runs."""

    async def scenario():
        async with aiohttp.ClientSession() as http:
            _owner, owner_auth = await new_identity(http, server.url)
            guest, guest_auth = await new_identity(http, server.url)
            url = f"{server.url}/v1/database/gate"
            assert (await http.put(url, data=GATEKEEPER, headers=owner_auth)).status == 200
            response = await http.post(f"{url}/sql", data="SELECT event FROM visit", headers=guest_auth)
            assert response.status == 200
            # the guest's own query already sees its client_connected row; its disconnect follows the answer
            assert (await response.json())[0]["rows"] == [["connected"]]
            response = await http.post(
                f"{url}/call/ban", json=[{"__identity__": "0x" + guest}], headers=owner_auth
            )
            assert response.status == 200
            response = await http.post(f"{url}/sql", data="SELECT * FROM visit", headers=guest_auth)
            assert response.status == 403
            assert "you are banned" in await response.text()
            response = await http.post(
                f"{url}/sql", data="SELECT event FROM visit WHERE who = 0x" + guest, headers=owner_auth
            )
            assert [row[0] for row in (await response.json())[0]["rows"]] == ["connected", "disconnected"]

    run(scenario())
