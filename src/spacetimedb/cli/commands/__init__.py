"""The command registry: which top-level ``spacetime`` command lives in which module.

``spacetime --help`` lists the commands from this table without importing any of their modules; a module
is imported only when its command runs (see :class:`spacetimedb.cli.main.LazyGroup`). To add a command,
write ``spacetimedb/cli/commands/<name>.py`` defining a ``click.Command`` (or ``click.Group``) and add one
line here. Keep this module free of imports.
"""

from __future__ import annotations

from typing import NamedTuple


class LazyCommand(NamedTuple):
    target: str  # "package.module:attribute", the click command object
    short_help: str  # shown by `spacetime --help` without importing the module


COMMANDS: dict[str, LazyCommand] = {
    "generate": LazyCommand(
        "spacetimedb.cli.commands.generate:generate", "Generate client bindings (Python, TypeScript) for a module"
    ),
    "login": LazyCommand(
        "spacetimedb.cli.commands.login:login", "Obtain and show the identity token of a server"
    ),
    "logout": LazyCommand(
        "spacetimedb.cli.commands.logout:logout", "Forget the identity token saved for a server"
    ),
    "server": LazyCommand("spacetimedb.cli.commands.server:server", "Manage saved servers"),
    "version": LazyCommand(
        "spacetimedb.cli.commands.version:version", "Print the versions of the CLI and package"
    ),
}
