"""A hostile module that tries to get out of its worker: network sockets, new processes, new threads.

What works it records in its public `loot` table; `marker` arguments name a file that code escaping the
worker's control (a child process, a thread) creates, so the test can see whether any of it ever ran.
"""

import _thread
import concurrent.futures
import ctypes
import os
import socket
import subprocess
import sys
import threading
from typing import Annotated

from spacetimedb import AutoInc, PrimaryKey, ReducerContext, reducer, table, u16, u64


@table(public=True)
class Loot:
    id: Annotated[u64, PrimaryKey, AutoInc]
    what: str
    data: str


def keep(ctx: ReducerContext, what: str, data: str) -> None:
    ctx.db.loot.insert(Loot(id=0, what=what, data=data))


@reducer
def whoami(ctx: ReducerContext) -> None:
    keep(ctx, "pid", str(os.getpid()))


# ---- sockets ----------------------------------------------------------------------------------------------------


@reducer
def open_tcp_socket(ctx: ReducerContext) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        keep(ctx, "tcp socket", repr(sock))


@reducer
def connect_to_server(ctx: ReducerContext, port: u16) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as connection:
        connection.sendall(b"GET /v1/ping HTTP/1.0\r\n\r\n")
        keep(ctx, "server answered", connection.recv(200).decode("latin-1"))


@reducer
def open_socket_pair(ctx: ReducerContext) -> None:
    first, second = socket.socketpair()
    keep(ctx, "socket pair", repr((first, second)))


@reducer
def open_udp_socket(ctx: ReducerContext, port: u16) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"hello", ("127.0.0.1", port))
        keep(ctx, "udp socket", repr(sock))


# ---- processes --------------------------------------------------------------------------------------------------


def _touch_command(marker: str) -> list[str]:
    return [sys.executable, "-c", f"open({marker!r}, 'w').close()"]


@reducer
def run_id(ctx: ReducerContext, marker: str) -> None:
    result = subprocess.run(["id", "-u"], capture_output=True, timeout=5, check=False)
    keep(ctx, "id -u", result.stdout.decode())


@reducer
def run_subprocess(ctx: ReducerContext, marker: str) -> None:
    result = subprocess.run(_touch_command(marker), timeout=5, check=False)
    keep(ctx, "subprocess", str(result.returncode))


@reducer
def fork(ctx: ReducerContext, marker: str) -> None:
    pid = os.fork()
    if pid == 0:  # the child: leave a trace and vanish
        open(marker, "w").close()
        os._exit(0)
    keep(ctx, "fork", str(pid))


@reducer
def posix_spawn(ctx: ReducerContext, marker: str) -> None:
    command = _touch_command(marker)
    keep(ctx, "posix_spawn", str(os.posix_spawn(command[0], command, {})))


@reducer
def exec_program(ctx: ReducerContext, marker: str) -> None:
    command = _touch_command(marker)
    os.execv(command[0], command)


@reducer
def shell(ctx: ReducerContext, marker: str) -> None:
    """os.system reports a failure only in its status, so the status is kept for the test to see."""
    keep(ctx, "os.system", str(os.system(f"touch {marker}")))


# ---- threads ----------------------------------------------------------------------------------------------------


def _native_thread(run) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    start = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)(lambda _: run())
    _native_thread.keep_alive = start  # the callback must outlive this call if the thread starts
    thread = ctypes.c_ulong()
    error = libc.pthread_create(ctypes.byref(thread), None, start, None)
    if error:
        raise OSError(error, os.strerror(error))


@reducer
def start_thread(ctx: ReducerContext, way: str, marker: str) -> None:
    def run() -> None:
        open(marker, "w").close()

    if way == "threading.Thread":
        threading.Thread(target=run, daemon=True).start()
    elif way == "_thread.start_new_thread":
        _thread.start_new_thread(run, ())
    elif way == "ThreadPoolExecutor":
        concurrent.futures.ThreadPoolExecutor(1).submit(run)
    elif way == "pthread_create":
        _native_thread(run)
    else:
        raise ValueError(f"unknown way {way!r}")
    keep(ctx, "thread started", way)


@reducer
def list_threads(ctx: ReducerContext) -> None:
    keep(ctx, "threads", ",".join(sorted(thread.name for thread in threading.enumerate())))
