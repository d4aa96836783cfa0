"""GET /v1/metrics: Prometheus text that prometheus_client parses, values that move with calls, restarts by cause,
no row contents, and access open on loopback only (a token elsewhere)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from unittest import mock

import aiohttp
import pytest
from aiohttp.test_utils import make_mocked_request
from prometheus_client.parser import text_string_to_metric_families

from spacetimedb.server.metrics import allowed
from tests.conftest import start_server

from .helpers import call, ledger, rows

pytestmark = pytest.mark.slow  # real processes or long runs: ./test.sh --fast leaves these out


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(http: aiohttp.ClientSession, url: str) -> Samples:
    async with http.get(f"{url}/v1/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name, frozenset(sample.labels.items())] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def worker_pids(server_pid: int) -> list[int]:
    """The server's child processes (its workers)."""
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as file:
                    fields = file.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == server_pid:
                children.append(int(entry))
    return children


def test_metrics_parse_and_move_with_calls(ops_server):
    url = ops_server.url

    async def scenario():
        async with aiohttp.ClientSession() as http:
            auth, identity = await ledger(http, url, 4, 100)
            db = {"database": identity}
            before = await scrape(http, url)
            # the failing call first: a committed call answers once its transaction is durable, so after the last
            # one only its disconnection may still wait for the disk (a failed call's connection and
            # disconnection are both unawaited, which made the lag below 2 at times)
            async with http.post(
                f"{url}/v1/database/ledger/call/transfer", json=[0, 9, 0, 99, 1], headers=auth
            ) as response:
                assert response.status == 530  # no account 99: the reducer fails
            for seq in range(5):
                await call(http, url, "ledger", "transfer", [0, seq, 0, 1, 3], auth)
            after = await scrape(http, url)
            transfer = {"database": identity, "reducer": "transfer"}
            assert value(after, "spacetime_reducer_calls_total", **transfer) == 6
            assert value(after, "spacetime_reducer_failures_total", **transfer) == 1
            assert value(before, "spacetime_reducer_calls_total", **transfer) == 0
            assert value(after, "spacetime_reducer_duration_seconds_count", **transfer) == 6
            assert value(after, "spacetime_reducer_duration_seconds_bucket", **transfer, le="+Inf") == 6
            assert value(after, "spacetime_reducer_duration_seconds_sum", **transfer) > 0
            # each HTTP call also commits its caller's connection and disconnection
            assert (
                value(after, "spacetime_transactions_total", **db)
                >= value(before, "spacetime_transactions_total", **db) + 5
            )
            assert value(after, "spacetime_commitlog_bytes", **db) > value(
                before, "spacetime_commitlog_bytes", **db
            )
            assert 0 <= value(after, "spacetime_durable_lag_transactions", **db) <= 1
            assert value(after, "spacetime_worker_memory_bytes", **db) > 1 << 20
            assert value(after, "spacetime_clients", **db) == 0
            assert value(after, "spacetime_open_files") > 0
            assert value(after, "spacetime_connections") >= 1
            assert value(after, "spacetime_database_info", database=identity, names="ledger") == 1
            # a snapshot is taken every 150 transactions: after 160 more it exists and lags a little
            for seq in range(160):
                await call(http, url, "ledger", "transfer", [1, seq, 1, 2, 1], auth)
            later = await scrape(http, url)
            assert value(later, "spacetime_snapshot_offset", **db) >= 150
            assert value(later, "spacetime_snapshot_age_seconds", **db) >= 0
            assert ("spacetime_snapshot_age_seconds", frozenset(db.items())) in later
            # rows and arguments never appear: only the label names below exist
            label_names = {name for _, labels in later for name, _ in labels}
            assert label_names <= {"database", "reducer", "le", "cause", "names"}
            # a worker killed from outside counts as a restart by signal, and the database comes back
            (worker,) = worker_pids(ops_server.process.pid)
            os.kill(worker, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                restarted = await scrape(http, url)
                if (
                    value(restarted, "spacetime_worker_restarts_total", database=identity, cause="signal")
                    == 1
                ):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the worker's death was not counted")
            assert len(await rows(http, url, "ledger", "SELECT * FROM account", auth)) == 4

    asyncio.run(scenario())


def _request_from(address: str, token: str | None = None):
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda key, default=None: (
        (address, 4321) if key == "peername" else default
    )
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return make_mocked_request("GET", "/v1/metrics", headers=headers, transport=transport)


def test_metrics_access_open_on_loopback_and_a_token_elsewhere():
    assert allowed(_request_from("127.0.0.1"), None)
    assert allowed(_request_from("::1"), None)
    assert not allowed(_request_from("10.1.2.3"), None)
    assert not allowed(_request_from("10.1.2.3", "guess"), "secret")
    assert allowed(_request_from("10.1.2.3", "secret"), "secret")
    assert not allowed(_request_from("10.1.2.3", "secret"), None)


def test_metrics_through_a_proxy_need_the_token(tmp_path):
    """A reverse proxy on the same host connects from loopback: what it forwards still needs the token."""
    server = start_server(tmp_path / "data", extra_args=["--metrics-token", "s3cret"])

    async def scenario():
        async with aiohttp.ClientSession() as http:
            forwarded = {"X-Forwarded-For": "203.0.113.9"}
            async with http.get(f"{server.url}/v1/metrics", headers=forwarded) as response:
                assert response.status == 403
                assert "--metrics-token" in await response.text()
            with_token = {**forwarded, "Authorization": "Bearer s3cret"}
            async with http.get(f"{server.url}/v1/metrics", headers=with_token) as response:
                assert response.status == 200
                assert "spacetime_open_files" in await response.text()
            async with http.get(f"{server.url}/v1/metrics") as response:
                assert response.status == 200

    try:
        asyncio.run(scenario())
    finally:
        server.shut_down()
