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
    "backup": LazyCommand(
        "spacetimedb.cli.commands.backup:backup", "Write a backup archive of a database while it serves"
    ),
    "call": LazyCommand("spacetimedb.cli.commands.call:call", "Call a reducer of a database"),
    "delete": LazyCommand("spacetimedb.cli.commands.delete:delete", "Delete a database"),
    "describe": LazyCommand(
        "spacetimedb.cli.commands.describe:describe", "Describe the schema of a database"
    ),
    "dev": LazyCommand(
        "spacetimedb.cli.commands.dev:dev",
        "Publish a module and regenerate its bindings on each change",
    ),
    "generate": LazyCommand(
        "spacetimedb.cli.commands.generate:generate",
        "Generate client bindings (Python, TypeScript) for a module",
    ),
    "init": LazyCommand("spacetimedb.cli.commands.init:init", "Create a new module project"),
    "list": LazyCommand(
        "spacetimedb.cli.commands.list:list_databases", "List the databases owned by your identity"
    ),
    "login": LazyCommand(
        "spacetimedb.cli.commands.login:login", "Obtain and show the identity token of a server"
    ),
    "logout": LazyCommand(
        "spacetimedb.cli.commands.logout:logout", "Forget the identity token saved for a server"
    ),
    "lock": LazyCommand(
        "spacetimedb.cli.commands.dblock:lock", "Lock a database to prevent accidental deletion"
    ),
    "log": LazyCommand(
        "spacetimedb.cli.commands.log:log", "List the transactions of a database from its commitlog"
    ),
    "logs": LazyCommand(
        "spacetimedb.cli.commands.logs:logs", "Print and follow the module log of a database"
    ),
    "publish": LazyCommand(
        "spacetimedb.cli.commands.publish:publish", "Create or update a database from a module"
    ),
    "rename": LazyCommand("spacetimedb.cli.commands.rename:rename", "Rename a database"),
    "restore": LazyCommand(
        "spacetimedb.cli.commands.backup:restore", "Create or replace a database from a backup archive"
    ),
    "server": LazyCommand("spacetimedb.cli.commands.server:server", "Manage saved servers"),
    "sql": LazyCommand("spacetimedb.cli.commands.sql:sql", "Run SQL on a database"),
    "start": LazyCommand("spacetimedb.cli.commands.start:start", "Run a local server in the foreground"),
    "subscribe": LazyCommand(
        "spacetimedb.cli.commands.subscribe:subscribe", "Subscribe to SQL queries and print updates"
    ),
    "unlock": LazyCommand("spacetimedb.cli.commands.dblock:unlock", "Unlock a database so it can be deleted"),
    "version": LazyCommand(
        "spacetimedb.cli.commands.version:version", "Print the versions of the CLI and package"
    ),
}
