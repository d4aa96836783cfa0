"""What every command gets from the root ``spacetime`` group: where the config is, and helpers around it.

Imported at startup, so it imports nothing heavy at module level: the config, server and identity modules
(and with them tomlkit) are loaded inside the methods that need them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from spacetimedb.cli.config import Config, SavedToken
    from spacetimedb.cli.servers import ServerTarget

CONFIG_DIR_ENV = "SPACETIME_CONFIG_DIR"
CONFIG_FILE_NAME = "cli.toml"


def resolve_config_path(
    option: Path | None, environ: Mapping[str, str] = os.environ, root_dir: Path | None = None
) -> Path:
    """``--config-path``, else ``ROOT/config/cli.toml`` with upstream's ``--root-dir ROOT``, else
    ``$SPACETIME_CONFIG_DIR/cli.toml``, else ``~/.config/spacetime/cli.toml``."""
    if option is not None:
        return option.expanduser().absolute()
    if root_dir is not None:
        return root_dir.expanduser().absolute() / "config" / CONFIG_FILE_NAME
    config_dir = environ.get(CONFIG_DIR_ENV)
    if config_dir:
        return Path(config_dir).expanduser().absolute() / CONFIG_FILE_NAME
    return Path.home() / ".config" / "spacetime" / CONFIG_FILE_NAME


@dataclass(frozen=True)
class CliContext:
    """The ``ctx.obj`` of every command; get it with ``@pass_cli``."""

    config_path: Path
    root_dir: Path | None = None  # upstream's --root-dir: config/cli.toml and data/ live beneath it

    def read_config(self) -> Config:
        """A lock-free snapshot, for commands that will not write the config."""
        from spacetimedb.cli.config import read_config

        return read_config(self.config_path)

    def edit_config(self) -> AbstractContextManager[Config]:
        """``with cli.edit_config() as config:`` -- locked read-modify-write; keep network calls outside."""
        from spacetimedb.cli.config import edit_config

        return edit_config(self.config_path)

    def resolve_server(self, server: str | None, config: Config | None = None) -> ServerTarget:
        """The server named by ``-s/--server`` (nickname, host or URL); None means the default server."""
        from spacetimedb.cli.servers import resolve_server

        return resolve_server(config or self.read_config(), server)

    def saved_token(self, target: ServerTarget) -> SavedToken | None:
        """The token saved for ``target``'s host, if any (never another host's)."""
        return self.read_config().saved_token(target.host_key)

    def token_for(self, target: ServerTarget) -> str:
        """The token for ``target``, obtaining and saving a new identity from it if none is saved."""
        from spacetimedb.cli.identity import token_for_server

        return token_for_server(self.config_path, target)


pass_cli = click.make_pass_decorator(CliContext)
