"""What upstream's smoketest harness (crates/smoketests/src/lib.rs) does, as our CLI does it: call a reducer, read
the module log as upstream's ``logs --format=json`` records, run SQL (``--confirmed true``), subscribe in the
background the way ``Smoketest::subscribe(..).background()`` does, and restart a server on its port and data."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.cli_e2e.conftest import Result, User
from tests.conftest import ServerProcess, start_server

SUBSCRIBE_TIMEOUT_SECONDS = "30"  # upstream's `-t 30`

# The reducers upstream's modules-basic and restart-person share, for a module with a `Person` table (`id`, `name`).
ADD_AND_SAY_HELLO = """

    @reducer
    def add(ctx: ReducerContext, name: str) -> None:
        ctx.db.person.insert(Person(id=0, name=name))


    @reducer
    def say_hello(ctx: ReducerContext) -> None:
        for person in ctx.db.person.iter():
            spacetimedb.log.info(f"Hello, {person.name}!")
        spacetimedb.log.info("Hello, World!")
"""
GREETINGS = ("Hello, Robert!", "Hello, Julie!", "Hello, Samantha!", "Hello, World!")


@dataclass
class Smoke:
    """One database as upstream's ``Smoketest`` sees it: its name and the user (identity) that published it."""

    user: User
    database: str

    def call(self, reducer: str, *args: str) -> str:
        """Call, and fail the test unless the call succeeded (upstream's ``test.call(..).unwrap()``)."""
        result = self.call_result(reducer, *args)
        assert result.code == 0, result
        return result.out

    def call_result(self, reducer: str, *args: str) -> Result:
        return self.user("call", self.database, reducer, *args)

    def logs(self, n: int, *extra: str) -> list[str]:
        """The messages of the last ``n`` log records (upstream's ``test.logs(n)``)."""
        return [str(record.get("message")) for record in self.log_records(n, *extra)]

    def log_records(self, n: int, *extra: str) -> list[dict[str, Any]]:
        result = self.user("logs", self.database, "--format=json", "-n", str(n), *extra)
        assert result.code == 0, result
        return [json.loads(line) for line in result.out.splitlines() if line.strip()]

    def assert_greeted_everyone(self) -> None:
        """After `add` of Robert, Julie and Samantha and a `say_hello`: every greeting is in the log."""
        logs = self.logs(100)
        for greeting in GREETINGS:
            assert any(greeting in line for line in logs), (greeting, logs)

    def sql(self, query: str) -> str:
        result = self.user("sql", self.database, query)
        assert result.code == 0, result
        return result.out

    def sql_confirmed(self, query: str) -> str:
        """Upstream's ``sql_confirmed``: ``spacetime sql --confirmed true``."""
        result = self.user("sql", "--confirmed", "true", self.database, query)
        assert result.code == 0, result
        return result.out

    def subscribe(self, *queries: str, n: int | None, confirmed: bool | None = None) -> Subscription:
        """Start ``spacetime subscribe`` in the background and return once its initial update arrived; with
        ``n=None`` it runs until the server closes the connection (or its timeout)."""
        args = [*queries, "-t", SUBSCRIBE_TIMEOUT_SECONDS, "--print-initial-update"]
        if n is not None:
            args += ["-n", str(n)]
        if confirmed is not None:
            args += ["--confirmed", str(confirmed).lower()]
        subscription = Subscription(self.user.start("subscribe", self.database, *args))
        subscription.initial = subscription.next_update()
        return subscription

    def subscribe_once(self, *queries: str) -> Result:
        """Upstream's ``subscribe(..).expect_rows(0).run()``: subscribe, print nothing but the initial update, exit."""
        return self.user("subscribe", self.database, *queries, "-t", SUBSCRIBE_TIMEOUT_SECONDS, "-n", "0")


END_OF_OUTPUT = None  # what the reader thread queues once the process's stdout closed


@dataclass
class Subscription:
    """A background ``spacetime subscribe``: its stdout read on a thread so waits stay bounded."""

    process: subprocess.Popen[str]
    initial: Any = None
    lines: queue.Queue[str | None] = field(default_factory=queue.Queue)

    def __post_init__(self) -> None:
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.strip():
                self.lines.put(line)
        self.lines.put(END_OF_OUTPUT)

    def next_update(self, timeout: float = 30) -> Any:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no subscription update within {timeout}s") from None
        if line is END_OF_OUTPUT:
            self.process.wait(timeout=timeout)
            assert self.process.stderr is not None
            raise AssertionError(
                f"subscribe exited ({self.process.returncode}): {self.process.stderr.read()}"
            )
        return json.loads(line)

    def collect(self, timeout: float = 60) -> list[Any]:
        """Wait for the process to exit (after its ``-n`` updates) and return the updates it printed."""
        code = self.process.wait(timeout=timeout)
        assert self.process.stderr is not None
        assert code == 0, self.process.stderr.read()
        updates = []
        while (line := self.lines.get(timeout=timeout)) is not END_OF_OUTPUT:
            updates.append(json.loads(line))
        return updates

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


class Subscriptions:
    """Every background subscription a test started, killed at the end whatever happened."""

    def __init__(self) -> None:
        self.started: list[Subscription] = []

    def __call__(self, smoke: Smoke, *queries: str, n: int, confirmed: bool | None = None) -> Subscription:
        subscription = smoke.subscribe(*queries, n=n, confirmed=confirmed)
        self.started.append(subscription)
        return subscription

    def stop_all(self) -> None:
        for subscription in self.started:
            subscription.stop()


@pytest.fixture
def subscriptions() -> Iterator[Subscriptions]:
    """Start background subscriptions; each is killed after the test."""
    subscriptions = Subscriptions()
    try:
        yield subscriptions
    finally:
        subscriptions.stop_all()


def saved_token(user: User) -> str:
    """The token the user's CLI saved for its server (upstream's ``read_token``), obtained first if none is."""
    shown = user("login", "show", "--token", "--json")
    assert shown.code == 0, shown
    token = json.loads(shown.out)["token"]
    if token is None:
        assert user("login", "--server-issued-login", user.url, server=False).code == 0
        return saved_token(user)
    return str(token)


def put_program(user: User, database: str, program: bytes) -> tuple[int, str]:
    """Publish ``program`` over HTTP as the user, past the CLI's own checks of the module: the HTTP status and
    the answer's text."""
    request = urllib.request.Request(
        f"{user.url}/v1/database/{database}",
        data=program,
        method="PUT",
        headers={"Authorization": f"Bearer {saved_token(user)}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


def publish(user: User, database: str, module: Path, *args: str) -> Smoke:
    user.publish(database, module, *args)
    return Smoke(user, database)


@contextmanager
def running_server(data_dir: Path, *extra_args: str) -> Iterator[ServerProcess]:
    """A server of a test file's own (``extra_args`` on its command line), shut down at the end."""
    server = start_server(data_dir, extra_args=list(extra_args))
    try:
        yield server
    finally:
        server.shut_down()


RESTART_ATTEMPTS = 5


class RestartableServer:
    """A server with a data directory that a test stops and starts again on the same port (upstream's
    ``restart_server``), so the users' saved server URL and identities stay valid."""

    def __init__(self, data_dir: Path, extra_args: list[str] | None = None) -> None:
        self.data_dir = data_dir
        self.extra_args = extra_args or []
        self.process: ServerProcess = start_server(data_dir, extra_args=self.extra_args)
        self.url = self.process.url

    def restart(self) -> None:
        port = self.process.port
        self.process.shut_down()
        same_port = [*self.extra_args, "--listen-addr", f"127.0.0.1:{port}"]
        for attempt in range(RESTART_ATTEMPTS):
            try:
                self.process = start_server(self.data_dir, extra_args=same_port)
                break
            except RuntimeError:  # the freed port was taken meanwhile (another process's ephemeral port)
                if attempt == RESTART_ATTEMPTS - 1:
                    raise
                time.sleep(1)
        assert self.process.url == self.url

    def __enter__(self) -> RestartableServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.shut_down()
