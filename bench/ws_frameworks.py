"""Which async web stack should carry the WebSocket protocol? aiohttp vs Starlette on uvicorn, both on uvloop.

Run: .venv/bin/python bench/ws_frameworks.py [--seconds S] [--clients C] [--inflight N]
Each server echoes binary messages (the shape of our traffic: a small request in, a small reply out). The same
load generator (aiohttp client, in its own process) keeps N messages in flight on each of C connections and counts
replies per second. Prints messages/s per stack and the ratio aiohttp / starlette.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import time


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_aiohttp(port: int) -> None:
    import uvloop
    from aiohttp import WSMsgType, web

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            if message.type == WSMsgType.BINARY:
                await ws.send_bytes(message.data)
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def run_starlette(port: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        try:
            while True:
                await ws.send_bytes(await ws.receive_bytes())
        except WebSocketDisconnect:
            pass

    app = Starlette(routes=[WebSocketRoute("/ws", handler)])
    uvicorn.run(app, host="127.0.0.1", port=port, loop="uvloop", log_level="warning", ws="websockets")


async def load(port: int, seconds: float, clients: int, inflight: int) -> float:
    import aiohttp

    count = 0
    payload = b"\x03" + b"\x00" * 30

    async def one() -> None:
        nonlocal count
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(f"ws://127.0.0.1:{port}/ws")
            for _ in range(inflight):
                await ws.send_bytes(payload)
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                await ws.receive()
                count += 1
                await ws.send_bytes(payload)
            await ws.close()

    await asyncio.gather(*(one() for _ in range(clients)))
    return count / seconds


def measure(target: object, seconds: float, clients: int, inflight: int) -> float:
    port = free_port()
    server = multiprocessing.Process(target=target, args=(port,), daemon=True)
    server.start()
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        import uvloop

        return uvloop.run(load(port, seconds, clients, inflight))
    finally:
        server.terminate()
        server.join(5)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--inflight", type=int, default=10)
    args = parser.parse_args()
    results = {
        name: measure(target, args.seconds, args.clients, args.inflight)
        for name, target in (("aiohttp", run_aiohttp), ("starlette+uvicorn", run_starlette))
    }
    for name, rate in results.items():
        print(f"{name:20} {rate:12,.0f} messages/s")
    print(f"aiohttp / starlette+uvicorn: {results['aiohttp'] / results['starlette+uvicorn']:.2f}")


if __name__ == "__main__":
    main()
