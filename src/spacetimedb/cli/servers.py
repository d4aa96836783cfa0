"""Servers: URL parsing, saved server entries, and ``-s/--server NICKNAME_OR_URL`` resolution.

A server is identified on the wire by its *host key*: the lower-cased ``host:port`` with the protocol's
default port made explicit (``example.com`` over https -> ``example.com:443``). Tokens are saved under that
key, so a token can only ever be sent to the host:port that issued it, whatever nicknames point where.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from spacetimedb.cli.errors import CliError

if TYPE_CHECKING:
    from spacetimedb.cli.config import Config

VALID_PROTOCOLS = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
# No dots or colons: a nickname can then never be mistaken for a host name or a host:port.
_NICKNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_HOSTNAME = re.compile(r"[a-z0-9._-]+|[0-9a-f:.]+")  # urlsplit lower-cases and strips IPv6 brackets


@dataclass(frozen=True)
class ServerConfig:
    """One saved server, as in a ``[[server_configs]]`` entry."""

    nickname: str | None
    host: str
    protocol: str
    ecdsa_public_key: str | None = None

    @property
    def url(self) -> str:
        return f"{self.protocol}://{self.host}"

    @property
    def host_key(self) -> str:
        return host_key(self.host, self.protocol)

    @property
    def label(self) -> str:
        return self.nickname or self.host


@dataclass(frozen=True)
class ServerTarget:
    """The server a command talks to, after ``-s`` resolution."""

    protocol: str
    host: str
    nickname: str | None = None
    ecdsa_public_key: str | None = None
    is_saved: bool = False  # has a [[server_configs]] entry

    @property
    def url(self) -> str:
        return f"{self.protocol}://{self.host}"

    @property
    def host_key(self) -> str:
        return host_key(self.host, self.protocol)

    @property
    def label(self) -> str:
        """How to name this server in a command line: the nickname if it has one, else its URL."""
        return self.nickname or self.url

    @property
    def display(self) -> str:
        """How to name this server in a sentence: ``local (http://127.0.0.1:3000)``, or just the URL."""
        return f"{self.nickname} ({self.url})" if self.nickname else self.url

    def endpoint(self, path: str) -> str:
        """The absolute URL of ``path`` (which starts with ``/``) on this server."""
        return self.url + path

    @classmethod
    def from_saved(cls, server: ServerConfig, protocol: str | None = None) -> ServerTarget:
        return cls(
            protocol=protocol or server.protocol,
            host=server.host,
            nickname=server.nickname,
            ecdsa_public_key=server.ecdsa_public_key,
            is_saved=True,
        )


def looks_like_url(text: str) -> bool:
    return "://" in text


def parse_server_url(url: str) -> tuple[str, str]:
    """``"http://127.0.0.1:3000/"`` -> ``("http", "127.0.0.1:3000")``; a CliError names what is wrong."""
    if not looks_like_url(url):
        raise CliError(f"invalid server URL {url!r}: it needs a protocol", hint=f"e.g. http://{url}")
    try:
        parts = urlsplit(url.strip())
        port = parts.port  # parses and range-checks the port
    except ValueError as error:
        raise CliError(f"invalid server URL {url!r}: {error}") from None
    protocol = parts.scheme.lower()
    if protocol not in VALID_PROTOCOLS:
        raise CliError(f"invalid server URL {url!r}: protocol must be http or https, not {protocol!r}")
    if not parts.hostname:
        raise CliError(f"invalid server URL {url!r}: no host name")
    if parts.username is not None or parts.password is not None:
        raise CliError(f"invalid server URL {url!r}: credentials do not belong in a server URL")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise CliError(
            f"invalid server URL {url!r}: give only protocol, host and port", hint="e.g. http://host:3000"
        )
    if not _HOSTNAME.fullmatch(parts.hostname):
        raise CliError(f"invalid server URL {url!r}: {parts.hostname!r} is not a host name or IP address")
    host = parts.netloc.lower()
    if port is None and host.endswith(":"):  # "http://host:/" has an empty port
        host = host[:-1]
    return protocol, host


def host_key(host: str, protocol: str) -> str:
    """``host:port`` with an explicit port, lower case: the key tokens are saved under."""
    host = host.lower()
    if _has_port(host):
        return host
    return f"{host}:{DEFAULT_PORTS.get(protocol, 80)}"


def _has_port(host: str) -> bool:
    if host.startswith("["):  # IPv6 literal: [::1] or [::1]:3000
        return "]:" in host
    return ":" in host


def validate_nickname(nickname: str) -> str:
    if not _NICKNAME.fullmatch(nickname):
        raise CliError(
            f"invalid server nickname {nickname!r}",
            hint="use 1-64 letters, digits, '-' or '_', starting with a letter or digit",
        )
    return nickname


def find_saved_server(servers: list[ServerConfig], name: str) -> ServerConfig | None:
    """The saved server called ``name``: a nickname, a host (``host`` or ``host:port``) or a URL."""
    for server in servers:
        if server.nickname == name:
            return server
    if looks_like_url(name):
        protocol, host = parse_server_url(name)
        wanted = host_key(host, protocol)
        return next((server for server in servers if server.host_key == wanted), None)
    lowered = name.lower()
    return next((server for server in servers if lowered in (server.host, server.host_key)), None)


def resolve_server(config: Config, server: str | None) -> ServerTarget:
    """What ``-s/--server NICKNAME_OR_URL`` names; None means the configured default server.

    A URL needs no saved entry (its protocol wins over a saved entry's); a nickname or host must be saved.
    """
    if server is None:
        return ServerTarget.from_saved(default_server(config))
    servers = config.servers()
    if looks_like_url(server):
        protocol, host = parse_server_url(server)
        saved = find_saved_server(servers, server)
        if saved is not None:
            return ServerTarget.from_saved(saved, protocol=protocol)
        return ServerTarget(protocol=protocol, host=host)
    saved = find_saved_server(servers, server)
    if saved is None:
        raise CliError(
            f"no saved server named {server!r}",
            hint=f"add it with `spacetime server add URL --name {server}`, or pass a URL such as http://{server}",
        )
    return ServerTarget.from_saved(saved)


def default_server(config: Config) -> ServerConfig:
    name = config.default_server_name()
    if name is None:
        raise CliError(
            "no default server is configured",
            hint="choose one with `spacetime server set-default NICKNAME`, or pass -s NICKNAME_OR_URL",
        )
    saved = find_saved_server(config.servers(), name)
    if saved is None:
        raise CliError(
            f"the default server {name!r} is not a saved server",
            hint="choose another with `spacetime server set-default NICKNAME`",
        )
    return saved
