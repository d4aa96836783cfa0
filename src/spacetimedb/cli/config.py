"""The CLI config file ``cli.toml``: its model, and the only two ways commands get at it.

* :func:`read_config` -- a consistent snapshot, no lock. Saves are atomic renames, so a reader always sees
  one whole version of the file. Use it when the command will not write.
* :func:`edit_config` -- a context manager that takes the config lock (:mod:`spacetimedb.cli.lock`),
  re-reads the file, yields it for changes, saves it atomically if it changed, and releases the lock when
  the ``with`` block ends (or raises). Keep network calls and prompts *outside* the block: the lock is then
  held only for a read-modify-write of a small file.

File layout (keys shared with SpacetimeDB's CLI where they exist) ::

    default_server = "local"

    [[server_configs]]
    nickname = "local"
    host = "127.0.0.1:3000"
    protocol = "http"
    ecdsa_public_key = '''-----BEGIN PUBLIC KEY-----...'''   # optional, from `server fingerprint`

    [tokens."127.0.0.1:3000"]        # keyed by host:port, see spacetimedb.cli.servers.host_key
    identity = "c200..."
    token = "eyJ..."

Tokens are not stored in the server entries on purpose: a nickname can be removed and re-added for another
host, and a command may address a server by URL without any entry; keying by host:port means no rename or
re-pointing can make the CLI send a token to a host that did not issue it. Keys the CLI does not know
(for instance SpacetimeDB's global ``spacetimedb_token``) are kept untouched, and so are comments.

Saving writes a temp file in the same directory, fsyncs it, renames it over the config, and fsyncs the
directory: a crash leaves either the old or the new file, never a torn one. Only lock holders write temp
files, so a holder may delete any temp file left by a crashed writer.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import tomlkit
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import AoT, Table
from tomlkit.toml_document import TOMLDocument

from spacetimedb.cli import tomledit
from spacetimedb.cli.errors import CliError, ConfigError
from spacetimedb.cli.lock import ConfigLock, lock_path_for
from spacetimedb.cli.servers import VALID_PROTOCOLS, ServerConfig, find_saved_server
from spacetimedb.fsutil import fsync_directory

DEFAULT_SERVER_KEY = "default_server"
SERVER_CONFIGS_KEY = "server_configs"
TOKENS_KEY = "tokens"
LISTEN_ADDR_KEY = "listen_addr"
UPSTREAM_LOGIN_KEYS = ("spacetimedb_token", "web_session_token")  # SpacetimeDB's one global login

LOCAL_SERVER = ServerConfig(nickname="local", host="127.0.0.1:3000", protocol="http")
FRESH_CONFIG_HEADER = (
    "spacetime CLI configuration. Hand edits and comments survive when the CLI saves this file.",
    "The [tokens] tables are credentials: keep this file private.",
)

# Hidden test hooks (seconds as a float); they let tests kill a process at an exact point.
HOLD_LOCK_HOOK_ENV = "SPACETIME_TEST_HOLD_LOCK_SECONDS"
PAUSE_BEFORE_RENAME_HOOK_ENV = "SPACETIME_TEST_PAUSE_BEFORE_RENAME_SECONDS"

_FIX_HINT = "fix the file by hand, or move it away to start from a fresh config"


@dataclass(frozen=True)
class SavedToken:
    """A token saved for one host, and the identity the server said it stands for."""

    token: str
    identity: str | None = None


class Config:
    """One version of ``cli.toml``; mutators edit the tomlkit document in place and mark it modified."""

    def __init__(self, path: Path, document: TOMLDocument) -> None:
        self.path = path
        self.modified = False
        self._document = document

    # -- loading ---------------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path) -> Config:
        """The config at ``path``, or a fresh one (server ``local`` as default) if there is no file."""
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls.fresh(path)
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(f"cannot read config file {path}: {_reason(error)}") from None
        return cls.parse(path, text)

    @classmethod
    def parse(cls, path: Path, text: str) -> Config:
        try:
            document = tomlkit.parse(text)
        except TOMLKitError as error:
            raise ConfigError(
                f"config file {path} is not valid TOML: {error}",
                hint=_FIX_HINT,
            ) from None
        config = cls(path, document)
        config.validate()
        return config

    @classmethod
    def fresh(cls, path: Path) -> Config:
        document = tomlkit.document()
        for line in FRESH_CONFIG_HEADER:
            document.add(tomlkit.comment(line))
        document.add(tomlkit.nl())
        document[DEFAULT_SERVER_KEY] = LOCAL_SERVER.nickname
        document.add(tomlkit.nl())
        document[SERVER_CONFIGS_KEY] = tomlkit.aot()
        tomledit.append_table(document[SERVER_CONFIGS_KEY], _server_table(LOCAL_SERVER))
        return cls(path, document)

    def validate(self) -> None:
        """Raise a ConfigError naming the first malformed key, so every command fails the same way."""
        self.default_server_name()
        self.servers()
        self.saved_tokens()

    def render(self) -> str:
        return tomlkit.dumps(self._document)

    # -- servers ---------------------------------------------------------------------------------------

    def default_server_name(self) -> str | None:
        value = self._document.get(DEFAULT_SERVER_KEY)
        if value is not None and not isinstance(value, str):
            raise self._type_error(DEFAULT_SERVER_KEY, "a string")
        return None if value is None else str(value)

    def listen_addr(self) -> str | None:
        """Upstream's top-level ``listen_addr``: where ``spacetime start`` listens when not told."""
        value = self._document.get(LISTEN_ADDR_KEY)
        if value is not None and not isinstance(value, str):
            raise self._type_error(LISTEN_ADDR_KEY, "a string (HOST:PORT)")
        return None if value is None else str(value)

    def servers(self) -> list[ServerConfig]:
        return [self._server_from_table(index, table) for index, table in enumerate(self._server_tables())]

    def find_server(self, name: str) -> ServerConfig | None:
        """The saved server with this nickname, host or URL."""
        return find_saved_server(self.servers(), name)

    def add_server(self, server: ServerConfig) -> None:
        self.check_can_add(server)
        if SERVER_CONFIGS_KEY not in self._document:
            self._document[SERVER_CONFIGS_KEY] = tomlkit.aot()
        tomledit.append_table(self._document[SERVER_CONFIGS_KEY], _server_table(server))
        self.modified = True

    def check_can_add(self, server: ServerConfig) -> None:
        """Raise if ``server`` would clash with a saved one by nickname or by host."""
        for existing in self.servers():
            if server.nickname is not None and server.nickname in (existing.nickname, existing.host):
                raise CliError(f"server nickname {server.nickname!r} is already used by {existing.url}")
            if existing.host_key == server.host_key:
                raise CliError(
                    f"server {server.host} is already saved as {existing.label!r}",
                    hint=f"remove it first with `spacetime server remove {existing.label}`",
                )
            if existing.nickname is not None and existing.nickname == server.host:
                raise CliError(f"host {server.host!r} would be ambiguous with the server nickname it matches")

    def remove_server(self, name: str) -> ServerConfig:
        """Forget a saved server; if it was the default, there is no default any more."""
        server = self._require_server(name)
        index = self._index_of(server)
        tomledit.remove_table(self._document, SERVER_CONFIGS_KEY, index)
        default = self.default_server_name()
        if default is not None and find_saved_server([server], default) is not None:
            del self._document[DEFAULT_SERVER_KEY]
        self.modified = True
        return server

    def edit_server(self, name: str, edited: ServerConfig) -> ServerConfig:
        """Replace the saved server ``name`` with ``edited`` (in place; a default stays the default). Its
        fingerprint goes when the host changes: it was the old host's key. Returns the server as it was."""
        old = self._require_server(name)
        was_default = (default := self.default_server_name()) is not None and (
            find_saved_server([old], default) is not None
        )
        index = self._index_of(old)
        others = [server for i, server in enumerate(self.servers()) if i != index]
        for other in others:
            if edited.nickname is not None and edited.nickname in (other.nickname, other.host):
                raise CliError(f"server nickname {edited.nickname!r} is already used by {other.url}")
            if other.host_key == edited.host_key:
                raise CliError(f"server {edited.host} is already saved as {other.label!r}")
        table, fresh = self._server_tables()[index], _server_table(edited)
        for key in ("nickname", "host", "protocol", "ecdsa_public_key"):
            if key in fresh:
                tomledit.set_table_value(table, key, fresh[key])
            else:
                tomledit.remove_table_key(table, key)
        if was_default:
            self._document[DEFAULT_SERVER_KEY] = edited.label
        self.modified = True
        return old

    def set_default_server(self, name: str) -> ServerConfig:
        server = self._require_server(name)
        self._document[DEFAULT_SERVER_KEY] = server.label
        self.modified = True
        return server

    def set_server_fingerprint(self, name: str, ecdsa_public_key: str | None) -> ServerConfig:
        index = self._index_of(self._require_server(name))
        table = self._server_tables()[index]
        if ecdsa_public_key is None:
            tomledit.remove_table_key(table, "ecdsa_public_key")
        else:
            tomledit.set_table_value(table, "ecdsa_public_key", tomledit.multiline_string(ecdsa_public_key))
        self.modified = True
        return self._server_from_table(index, table)

    # -- tokens ----------------------------------------------------------------------------------------

    def saved_tokens(self) -> dict[str, SavedToken]:
        tokens = self._document.get(TOKENS_KEY)
        if tokens is None:
            return {}
        if not isinstance(tokens, dict):
            raise self._type_error(TOKENS_KEY, 'a table of [tokens."host:port"] tables')
        return {key: self._token_from_table(key, entry) for key, entry in tokens.items()}

    def saved_token(self, host_key: str) -> SavedToken | None:
        return self.saved_tokens().get(host_key)

    def save_token(self, host_key: str, saved: SavedToken) -> None:
        if TOKENS_KEY not in self._document:
            self._document[TOKENS_KEY] = tomlkit.table(is_super_table=True)
        entry = tomlkit.table()
        if saved.identity is not None:
            entry["identity"] = saved.identity
        entry["token"] = saved.token
        self._document[TOKENS_KEY][host_key] = entry
        self.modified = True

    def forget_token(self, host_key: str) -> SavedToken | None:
        saved = self.saved_token(host_key)
        if saved is None:
            return None
        tokens = self._document[TOKENS_KEY]
        del tokens[host_key]
        if len(tokens) == 0:
            del self._document[TOKENS_KEY]
        self.modified = True
        return saved

    def forget_upstream_login(self) -> bool:
        """Remove SpacetimeDB's global login keys (``spacetimedb_token``, ``web_session_token``), which this
        CLI never uses but upstream's ``logout`` clears; returns whether there were any."""
        present = [key for key in UPSTREAM_LOGIN_KEYS if key in self._document]
        for key in present:
            del self._document[key]
        self.modified = self.modified or bool(present)
        return bool(present)

    # -- helpers ---------------------------------------------------------------------------------------

    def _server_tables(self) -> list[Table]:
        tables = self._document.get(SERVER_CONFIGS_KEY)
        if tables is None:
            return []
        if not isinstance(tables, AoT):
            raise self._type_error(SERVER_CONFIGS_KEY, "an array of [[server_configs]] tables")
        return list(tables)

    def _server_from_table(self, index: int, table: Table) -> ServerConfig:
        where = f"{SERVER_CONFIGS_KEY}[{index}]"
        protocol = self._string(table, where, "protocol", required=True)
        if protocol not in VALID_PROTOCOLS:
            raise ConfigError(f"config file {self.path}: {where}.protocol must be http or https")
        return ServerConfig(
            nickname=self._string(table, where, "nickname"),
            host=str(self._string(table, where, "host", required=True)).lower(),
            protocol=str(protocol),
            ecdsa_public_key=self._string(table, where, "ecdsa_public_key"),
        )

    def _token_from_table(self, key: str, entry: object) -> SavedToken:
        where = f'{TOKENS_KEY}."{key}"'
        if not isinstance(entry, dict):
            raise self._type_error(where, "a table")
        return SavedToken(
            token=str(self._string(entry, where, "token", required=True)),
            identity=self._string(entry, where, "identity"),
        )

    def _string(
        self, table: dict[str, object], where: str, key: str, *, required: bool = False
    ) -> str | None:
        value = table.get(key)
        if value is None:
            if required:
                raise ConfigError(f"config file {self.path}: {where} has no {key}", hint=_FIX_HINT)
            return None
        if not isinstance(value, str):
            raise self._type_error(f"{where}.{key}", "a string")
        return str(value)

    def _type_error(self, key: str, expected: str) -> ConfigError:
        return ConfigError(f"config file {self.path}: {key} must be {expected}", hint=_FIX_HINT)

    def _require_server(self, name: str) -> ServerConfig:
        server = self.find_server(name)
        if server is None:
            raise CliError(
                f"no saved server named {name!r}", hint="see the saved ones with `spacetime server list`"
            )
        return server

    def _index_of(self, server: ServerConfig) -> int:
        return self.servers().index(server)


def _server_table(server: ServerConfig) -> Table:
    table = tomlkit.table()
    if server.nickname is not None:
        table["nickname"] = server.nickname
    table["host"] = server.host
    table["protocol"] = server.protocol
    if server.ecdsa_public_key is not None:
        table["ecdsa_public_key"] = tomledit.multiline_string(server.ecdsa_public_key)
    return table


# -- access for commands -------------------------------------------------------------------------------


def read_config(path: Path) -> Config:
    """A snapshot of the config, without the lock: for commands that will not write it."""
    return Config.load(path)


@contextlib.contextmanager
def edit_config(path: Path, *, lock_timeout: float | None = None) -> Iterator[Config]:
    """Lock, load, yield for changes, save if modified, unlock. An exception in the block saves nothing."""
    with ConfigLock(lock_path_for(path), timeout=lock_timeout):
        config = Config.load(path)
        _sleep_for_test_hook(HOLD_LOCK_HOOK_ENV)
        yield config
        if config.modified:
            save_config(config)


def save_config(config: Config) -> None:
    """Write ``config`` atomically. The caller must hold the config lock."""
    target = Path(os.path.realpath(config.path))  # write through a symlinked config, keep the link
    _remove_leftover_temp_files(target)
    atomic_write(target, config.render().encode("utf-8"), mode=_file_mode(target))
    config.modified = False


def atomic_write(target: Path, data: bytes, *, mode: int) -> None:
    """Temp file in the same directory, fsync, rename over ``target``, fsync the directory."""
    temp = target.with_name(f"{_temp_prefix(target)}{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        try:
            os.fchmod(fd, mode)  # the umask must not loosen or tighten what we chose
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        _sleep_for_test_hook(PAUSE_BEFORE_RENAME_HOOK_ENV)
        os.replace(temp, target)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(error, OSError):
            raise CliError(f"cannot save config file {target}: {_reason(error)}") from None
        raise
    fsync_directory(target.parent)


def _temp_prefix(target: Path) -> str:
    return f".{target.name}."


def _remove_leftover_temp_files(target: Path) -> None:
    prefix = _temp_prefix(target)
    with contextlib.suppress(OSError):
        for entry in os.scandir(target.parent):
            if entry.name.startswith(prefix) and entry.name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def _file_mode(target: Path) -> int:
    """Keep the mode of an existing config; a new one is private, since it will hold tokens."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        return 0o600


def _sleep_for_test_hook(env_name: str) -> None:
    raw = os.environ.get(env_name)
    if raw:
        time.sleep(float(raw))


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error)
