"""``GET /v1/metrics``: the server and its running databases in Prometheus' text format.

Per database (label ``database``, its identity; ``spacetime_database_info`` maps it to its names): reducer calls,
failures and a duration histogram by reducer, transactions, commitlog bytes, the durable lag, the newest
snapshot's age, clients, subscriptions, the worker's memory, and worker restarts by cause. Per server:
connections, open files, refused connections by cause. Counts and sizes only: no row, argument or log ever
appears (they are the owners' business).

Who may scrape: anyone connecting from a loopback address; from elsewhere (or through a proxy that says so with
``Forwarded``/``X-Forwarded-For``) only with ``Authorization: Bearer <--metrics-token>`` (without a token
configured, nobody from elsewhere).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import logging
import os
import resource
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from spacetimedb.controller import RequestFailed, RunningDatabase, WorkerGone
from spacetimedb.protocol import seam
from spacetimedb.sats import Identity

if TYPE_CHECKING:
    from .app import Server

log = logging.getLogger(__name__)
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True)
class DatabaseSample:
    """What one running database reported for a scrape."""

    identity: str
    stats: seam.DatabaseStats
    metrics: seam.DatabaseMetrics
    durable_offset: int
    memory_bytes: int | None


def allowed(request: web.Request, token: str | None) -> bool:
    """Loopback peers always; others with the metrics token. A request a proxy forwarded (``Forwarded`` or
    ``X-Forwarded-For``) comes from elsewhere, whatever the proxy's own address."""
    peer = request.remote
    proxied = "Forwarded" in request.headers or "X-Forwarded-For" in request.headers
    with contextlib.suppress(ValueError):
        if not proxied and peer is not None and ipaddress.ip_address(peer.split("%")[0]).is_loopback:
            return True
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    return token is not None and scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


async def scrape(server: Server) -> bytes:
    samples = await asyncio.gather(*(_sample(r) for r in server.controller.running_databases()))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(server, [s for s in samples if s is not None]))
    return generate_latest(registry)


async def _sample(running: RunningDatabase) -> DatabaseSample | None:
    try:
        stats, metrics = await asyncio.gather(running.stats(), running.metrics())
    except (WorkerGone, RequestFailed, TimeoutError) as exc:
        log.debug("no metrics from %s: %s", running.identity.to_hex(), exc)
        return None
    pid = running.worker.process.pid if running.worker.process is not None else None
    return DatabaseSample(
        running.identity.to_hex(), stats, metrics, running.durable.value, _resident_bytes(pid)
    )


def _resident_bytes(pid: int | None) -> int | None:
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/statm") as file:  # the worker's memory, as the kernel counts it
            return int(file.read().split()[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return None


def _open_files() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


# (key, kind, name, help) of the per-database families
_PER_DATABASE: tuple[tuple[str, Any, str, str], ...] = (
    (
        "transactions",
        CounterMetricFamily,
        "spacetime_transactions",
        "Transactions committed (the next offset).",
    ),
    ("bytes", GaugeMetricFamily, "spacetime_commitlog_bytes", "Bytes of commitlog on disk."),
    (
        "lag",
        GaugeMetricFamily,
        "spacetime_durable_lag_transactions",
        "The last committed offset minus the durable one.",
    ),
    ("snapshot_offset", GaugeMetricFamily, "spacetime_snapshot_offset", "Offset of the newest snapshot."),
    (
        "snapshot_age",
        GaugeMetricFamily,
        "spacetime_snapshot_age_seconds",
        "Time since the newest snapshot was written.",
    ),
    (
        "snapshot_behind",
        GaugeMetricFamily,
        "spacetime_snapshot_age_transactions",
        "Transactions committed since the newest snapshot.",
    ),
    ("clients", GaugeMetricFamily, "spacetime_clients", "Connected clients."),
    (
        "subscribed",
        GaugeMetricFamily,
        "spacetime_subscribed_clients",
        "Clients with at least one subscription.",
    ),
    ("subscriptions", GaugeMetricFamily, "spacetime_subscriptions", "Subscribed query sets."),
    (
        "memory",
        GaugeMetricFamily,
        "spacetime_worker_memory_bytes",
        "Resident memory of the database's worker process.",
    ),
)


class _Collector:
    def __init__(self, server: Server, samples: list[DatabaseSample]) -> None:
        self._server = server
        self._samples = samples

    def collect(self) -> Iterator[Metric]:
        yield from self._database_metrics()
        yield from self._reducer_metrics()
        yield from self._server_metrics()

    def _database_metrics(self) -> Iterator[Metric]:
        families = {
            key: kind(name, documentation, labels=["database"])
            for key, kind, name, documentation in _PER_DATABASE
        }
        for sample in self._samples:
            label = [sample.identity]
            last = sample.stats.next_offset - 1
            families["transactions"].add_metric(label, sample.stats.next_offset)
            families["bytes"].add_metric(label, sample.metrics.commitlog_bytes)
            families["lag"].add_metric(label, max(0, last - sample.durable_offset))
            families["clients"].add_metric(label, sample.stats.clients)
            families["subscribed"].add_metric(label, sample.stats.subscribed_clients)
            families["subscriptions"].add_metric(label, sample.stats.query_sets)
            if sample.metrics.snapshot_offset is not None:
                families["snapshot_offset"].add_metric(label, sample.metrics.snapshot_offset)
                families["snapshot_behind"].add_metric(label, max(0, last - sample.metrics.snapshot_offset))
            if sample.metrics.snapshot_age_micros is not None:
                families["snapshot_age"].add_metric(label, sample.metrics.snapshot_age_micros / 1e6)
            if sample.memory_bytes is not None:
                families["memory"].add_metric(label, sample.memory_bytes)
        yield from families.values()
        yield self._restarts()
        yield self._info()

    def _restarts(self) -> Metric:
        family = CounterMetricFamily(
            "spacetime_worker_restarts",
            "Workers of the database that died unasked (or failed to launch), by cause.",
            labels=["database", "cause"],
        )
        for (identity, cause), count in sorted(self._server.controller.restarts.items(), key=str):
            family.add_metric([identity.to_hex(), cause], count)
        return family

    def _info(self) -> Metric:
        family = GaugeMetricFamily(
            "spacetime_database_info", "The names of each running database.", labels=["database", "names"]
        )
        for sample in self._samples:
            with contextlib.suppress(ValueError):
                names = self._server.control.names_of(Identity.from_hex(sample.identity))
                family.add_metric([sample.identity, ",".join(names)], 1)
        return family

    def _reducer_metrics(self) -> Iterator[Metric]:
        labels = ["database", "reducer"]
        calls = CounterMetricFamily("spacetime_reducer_calls", "Reducer calls.", labels=labels)
        failures = CounterMetricFamily(
            "spacetime_reducer_failures", "Reducer calls that failed (rolled back).", labels=labels
        )
        durations = HistogramMetricFamily(
            "spacetime_reducer_duration_seconds", "Time reducers ran (without the commit).", labels=labels
        )
        bounds = [f"{bound:g}" for bound in seam.DURATION_BUCKETS_SECONDS] + ["+Inf"]
        for sample in self._samples:
            for reducer in sample.metrics.reducers:
                label = [sample.identity, reducer.reducer]
                calls.add_metric(label, reducer.calls)
                failures.add_metric(label, reducer.failures)
                cumulative, buckets = 0, []
                for bound, count in zip(bounds, reducer.duration_buckets, strict=False):
                    cumulative += count
                    buckets.append((bound, cumulative))
                durations.add_metric(label, buckets, reducer.duration_sum_micros / 1e6)
        yield from (calls, failures, durations)

    def _server_metrics(self) -> Iterator[Metric]:
        server = self._server
        gate = server.connections
        connections = GaugeMetricFamily(
            "spacetime_connections", "Open client connections (HTTP and WebSocket)."
        )
        connections.add_metric([], gate.open_connections if gate is not None else 0)
        yield connections
        websockets = GaugeMetricFamily("spacetime_websocket_sessions", "Open WebSocket sessions.")
        websockets.add_metric([], len(server.sessions))
        yield websockets
        refused = CounterMetricFamily(
            "spacetime_refused_connections", "Connections refused, by cause.", labels=["cause"]
        )
        for cause, count in sorted((gate.refused if gate is not None else {}).items()):
            refused.add_metric([cause], count)
        yield refused
        open_files = _open_files()
        if open_files is not None:
            files = GaugeMetricFamily("spacetime_open_files", "File descriptors the server process holds.")
            files.add_metric([], open_files)
            yield files
        limit = GaugeMetricFamily("spacetime_open_files_limit", "The server process's open-file limit.")
        limit.add_metric([], resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        yield limit
        running = GaugeMetricFamily("spacetime_running_databases", "Databases whose worker runs.")
        running.add_metric([], len(self._samples))
        yield running


async def metrics_route(request: web.Request) -> web.Response:
    from .route_support import _server

    server = _server(request)
    if not allowed(request, server.options.metrics_token):
        return web.Response(
            status=403,
            text="metrics are open on loopback only; from elsewhere send Authorization: Bearer <--metrics-token>",
        )
    body = await scrape(server)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
