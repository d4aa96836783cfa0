"""The server's command-line tunables, declared once for both command lines (``python -m spacetimedb.server`` and
``spacetime start``): each knows its flag, kind, default and help, and ``server_options`` turns the values given
(text from a command line, or values) into ``ServerOptions``, refusing a bad one with a ``ValueError`` naming it.
A repeatable tunable (``--oidc-issuer``) takes a list: the flag given several times, or a list of values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from spacetimedb.controller import SandboxSettings, WorkerSettings
from spacetimedb.sats import Identity
from spacetimedb.sizes import format_size, parse_size

from .app import ServerOptions
from .connections import DEFAULT_KEEPALIVE_TIMEOUT, DEFAULT_REQUEST_HEAD_TIMEOUT, ConnectionSettings
from .cors import CorsPolicy
from .egress import EgressPolicy
from .oidc import FetchLimits, OidcIssuer

SECONDS, SIZE, COUNT, TEXT, FLAG = "seconds", "size", "count", "text", "flag"
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")
_METAVARS = {SECONDS: "SECONDS", SIZE: "SIZE", COUNT: "N", TEXT: "TEXT"}


@dataclass(frozen=True)
class Tunable:
    flag: str
    kind: str  # SECONDS | SIZE | COUNT | TEXT | FLAG
    default: Any  # None: computed from other values (the help says how)
    help: str
    minimum: float = 0
    metavar: str | None = None
    repeatable: bool = False  # given any number of times; its value is a tuple

    @property
    def name(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")

    @property
    def shown_default(self) -> str | None:
        if self.default is None or self.repeatable:
            return None  # the help says how it is computed, or that there is none
        if self.kind == SIZE:
            return format_size(self.default) if self.default else "0"
        return f"{self.default:g}" if isinstance(self.default, float) else str(self.default)

    @property
    def shown_metavar(self) -> str:
        return self.metavar or _METAVARS.get(self.kind, "")

    def parse(self, value: Any) -> Any:
        """The value given (text, or a value; for a repeatable tunable a list of them), checked; ``ValueError``
        names the flag."""
        if self.repeatable:
            values = [value] if isinstance(value, str) else list(value or ())
            return tuple(self._parse_one(v) for v in values)
        return self._parse_one(value)

    def _parse_one(self, value: Any) -> Any:
        if self.kind == TEXT and value is not None and not isinstance(value, str):
            raise ValueError(f"{self.flag}: expected text, got {value!r}")
        if value is None or self.kind in (FLAG, TEXT):
            return value
        try:
            if self.kind == SIZE:
                parsed: float = parse_size(value) if isinstance(value, str) else int(value)
            elif self.kind == COUNT:
                parsed = int(value)
            else:
                parsed = float(value)
        except ValueError:
            raise ValueError(f"{self.flag}: expected {self.shown_metavar.lower()}, got {value!r}") from None
        if parsed < self.minimum:
            raise ValueError(f"{self.flag} must be at least {self.minimum:g}, got {value!r}")
        return parsed


TUNABLES: tuple[Tunable, ...] = (
    Tunable(
        "--reducer-budget", SECONDS, 5.0, "Time a reducer or a query may run before it is stopped.", 0.001
    ),
    Tunable(
        "--load-budget",
        SECONDS,
        None,
        "Time a module's top-level code may take to load (at publish and each launch). "
        "Default: 6x the reducer budget.",
        0.001,
    ),
    Tunable(
        "--hard-grace",
        SECONDS,
        2.0,
        "Past budget + grace, the database's worker process is killed (and restarts on next use).",
    ),
    Tunable(
        "--module-memory",
        SIZE,
        2 << 30,
        "Memory limit of each database's worker process (0: none): its address space, or its data for a JS "
        "module (whose V8 heap gets a quarter of it, at most 256 MiB).",
    ),
    Tunable("--module-max-files", COUNT, 256, "Open-file limit of each database's worker process.", 32),
    Tunable(
        "--query-row-limit",
        COUNT,
        100_000,
        "Rows one read may return to others than the database's owner, unless the owner sets `row_limit` "
        "(0: none).",
    ),
    Tunable("--query-byte-limit", SIZE, 16 << 20, "Bytes one read may return, to anyone (0: none)."),
    Tunable(
        "--snapshot-interval",
        COUNT,
        1_000_000,
        "Each database snapshots its state after this many transactions (0: never); open and backups start "
        "from the newest snapshot.",
    ),
    Tunable(
        "--max-segment-size",
        SIZE,
        1 << 30,
        "A commitlog segment is closed and a new one started past this size.",
        4096,
    ),
    Tunable(
        "--as-of-max-replay",
        COUNT,
        1_000_000,
        "A read of the past (sql --as-of, spacetime log) replays at most this many transactions after the "
        "nearest snapshot; more is refused.",
        1,
    ),
    Tunable(
        "--client-outbox-limit",
        SIZE,
        64 << 20,
        "Bytes of messages that may wait for one client; a client that falls further behind is dropped.",
        1 << 16,
    ),
    Tunable(
        "--publishers",
        TEXT,
        None,
        "Only these identities (comma-separated) may create databases. Default: anyone, as on SpacetimeDB.",
        metavar="IDENTITY,...",
    ),
    Tunable(
        "--cors-origins",
        TEXT,
        None,
        "Origins of web pages that may call the HTTP API (comma-separated, e.g. https://app.example). "
        "Default: any, as on SpacetimeDB.",
        metavar="ORIGIN,...",
    ),
    Tunable(
        "--procedure-http-allow",
        TEXT,
        None,
        "Hosts procedures may send HTTP requests to (comma-separated; `*.example.com` patterns). Default: any "
        "host, but addresses on loopback and private networks only for hosts listed by name.",
        metavar="HOST,...",
    ),
    Tunable(
        "--procedure-http-timeout", SECONDS, 10.0, "The longest a procedure's HTTP request may take.", 0.001
    ),
    Tunable(
        "--procedure-http-max-response",
        SIZE,
        10 << 20,
        "The largest response body a procedure may receive.",
        1,
    ),
    Tunable(
        "--procedure-http-concurrency",
        COUNT,
        16,
        "Procedures' HTTP requests in flight at once, server-wide.",
        1,
    ),
    Tunable(
        "--oidc-issuer",
        TEXT,
        (),
        "Also accept the tokens of this OpenID Connect issuer (RS256 or ES256, keys found through its discovery "
        "document); URL#AUDIENCE also requires that audience. Repeatable. Default: only this server's own tokens.",
        metavar="URL[#AUDIENCE]",
        repeatable=True,
    ),
    Tunable(
        "--oidc-key-refresh",
        SECONDS,
        FetchLimits.refresh_seconds,
        "An OIDC issuer's keys are fetched again (for a key id not seen before) at most this often.",
    ),
    Tunable(
        "--metrics-token",
        TEXT,
        None,
        "Clients from other than loopback addresses may read GET /v1/metrics with this bearer token. "
        "Default: loopback only.",
        metavar="TOKEN",
    ),
    Tunable(
        "--log-level",
        TEXT,
        "warning",
        "The server's own log: debug, info, warning or error.",
        metavar="LEVEL",
    ),
    Tunable(
        "--log-format",
        TEXT,
        "text",
        "The server's own log on stderr: text lines, or json (one object a line).",
        metavar="FORMAT",
    ),
    Tunable(
        "--unsafe-modules",
        FLAG,
        False,
        "Start on a non-loopback address even where the kernel cannot isolate modules (no Landlock or seccomp).",
    ),
    Tunable(
        "--max-connections",
        COUNT,
        None,
        "Open client connections at most; past it new ones get a 503. Default: what the open-file limit "
        "leaves room for, at most 10000.",
        1,
    ),
    Tunable(
        "--max-connections-per-address",
        COUNT,
        None,
        "Open connections from one client address (an IPv6 /64) at most. Default: a quarter of "
        "--max-connections, at most 256; raise it behind a reverse proxy.",
        1,
    ),
    Tunable(
        "--request-head-timeout",
        SECONDS,
        DEFAULT_REQUEST_HEAD_TIMEOUT,
        "A new connection that sends no complete request head within this long is closed.",
        0.001,
    ),
    Tunable(
        "--pg-port",
        COUNT,
        None,
        "Serve the PostgreSQL wire protocol (psql, psycopg, asyncpg; the password is an auth token) on this "
        "port of the listen host (0: any free port). Default: off, as on SpacetimeDB.",
        0,
        metavar="PORT",
    ),
    Tunable(
        "--keepalive-timeout",
        SECONDS,
        DEFAULT_KEEPALIVE_TIMEOUT,
        "An HTTP connection idle this long between requests is closed (WebSockets have their own heartbeat).",
        0.001,
    ),
)


def server_options(given: Mapping[str, Any] | None = None) -> ServerOptions:
    """``ServerOptions`` from tunable values by name (``reducer_budget``, ...); the missing take defaults."""
    given = given or {}
    unknown = set(given) - {t.name for t in TUNABLES}
    if unknown:
        raise ValueError(f"unknown server options: {', '.join(sorted(unknown))}")
    v = {t.name: t.parse(given.get(t.name, t.default)) for t in TUNABLES}
    workers = WorkerSettings(
        reducer_budget_seconds=v["reducer_budget"],
        load_budget_seconds=v["load_budget"] if v["load_budget"] is not None else 6 * v["reducer_budget"],
        hard_grace_seconds=v["hard_grace"],
        query_row_limit=v["query_row_limit"] or None,
        query_byte_limit=v["query_byte_limit"] or None,
        snapshot_interval=v["snapshot_interval"],
        max_segment_size=v["max_segment_size"],
        as_of_max_replay=v["as_of_max_replay"],
        sandbox=SandboxSettings(memory_bytes=v["module_memory"], max_open_files=v["module_max_files"]),
    )
    connections = ConnectionSettings(
        max_connections=v["max_connections"],
        max_per_address=v["max_connections_per_address"],
        request_head_timeout=v["request_head_timeout"],
        keepalive_timeout=v["keepalive_timeout"],
    )
    return ServerOptions(
        workers=workers,
        publishers=_publishers(v["publishers"]),
        unsafe_modules=bool(v["unsafe_modules"]),
        max_outbox_bytes=v["client_outbox_limit"],
        connections=connections,
        cors=CorsPolicy.parse(v["cors_origins"]),
        egress=EgressPolicy(
            allow=_hosts(v["procedure_http_allow"]),
            timeout_seconds=v["procedure_http_timeout"],
            max_response_bytes=v["procedure_http_max_response"],
            max_concurrent=v["procedure_http_concurrency"],
        ),
        oidc_issuers=tuple(OidcIssuer.parse(text) for text in v["oidc_issuer"]),
        oidc_key_refresh_seconds=v["oidc_key_refresh"],
        metrics_token=v["metrics_token"] or None,
        log_level=_choice("--log-level", v["log_level"], LOG_LEVELS),
        log_format=_choice("--log-format", v["log_format"], LOG_FORMATS),
        pg_port=v["pg_port"],
    )


def _hosts(text: str | None) -> tuple[str, ...]:
    if text is None:
        return ("*",)
    hosts = tuple(h.strip() for h in text.split(",") if h.strip())
    for host in hosts:
        if any(c in host for c in "/: ") and not host.startswith("["):
            raise ValueError(f"--procedure-http-allow takes host names or patterns, not URLs: {host!r}")
    return hosts


def _choice(flag: str, value: str, choices: tuple[str, ...]) -> str:
    if value.lower() not in choices:
        raise ValueError(f"{flag} must be one of {', '.join(choices)}, got {value!r}")
    return value.lower()


def _publishers(text: str | None) -> frozenset[Identity] | None:
    if text is None:
        return None
    try:
        return frozenset(Identity.from_hex(p.strip()) for p in text.split(",") if p.strip())
    except ValueError:
        raise ValueError(f"--publishers takes identities as 64 hex digits, got {text!r}") from None
