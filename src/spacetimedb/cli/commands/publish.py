"""``spacetime publish``: create a database from a Python module, or update one (migrating its schema).

Order of events, so that every mistake is reported as early and as locally as possible: package the module,
load and validate it here (errors name the declaration, nothing is uploaded), then ask the server for the
migration plan of an existing database, confirm, and upload. A TypeScript module project is bundled here
(``cli.jsbuild``) and validated by the server, which runs it.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import click

from spacetimedb.cli.commands._database import (
    DatabaseClient,
    confirm,
    database_argument,
    open_database,
    summary,
)
from spacetimedb.cli.context import CliContext, pass_cli
from spacetimedb.cli.errors import CliError
from spacetimedb.cli.jsbuild import is_typescript_project
from spacetimedb.cli.options import (
    EqualsValueCommand,
    env_option,
    module_path_option,
    no_config_option,
    project_module_path,
    server_option,
)
from spacetimedb.cli.project_config import (
    ConfigTarget,
    ProjectConfig,
    check_keys,
    load_project_config,
    select_targets,
)

PUBLISH_TIMEOUT_SECONDS = 300.0  # the server loads the module and creates or migrates the database first
DEFAULT_MODULE_FILE = "module.py"  # what `spacetime init` writes


class ClearMode(StrEnum):
    """When to delete the database's data before publishing (upstream's ``--delete-data[=MODE]``)."""

    ALWAYS = "always"
    ON_CONFLICT = "on-conflict"  # only when the update needs a manual migration
    NEVER = "never"


# upstream's --yes=VALUE[,VALUE]: which questions to skip. remote, migrate and skip-login are accepted for
# upstream's scripts and change nothing here: this CLI never asks them.
YES_VALUES = ("all", "remote", "migrate", "break-clients", "skip-login", "delete-data")


@dataclass(frozen=True)
class Answers:
    """The questions the user answered yes to on the command line."""

    break_clients: bool
    delete_data: bool

    @classmethod
    def parse(cls, assume_yes: bool, yes_to: tuple[str, ...], break_clients: bool) -> Answers:
        values = {value.strip() for item in yes_to for value in item.split(",")}
        unknown = sorted(values - set(YES_VALUES))
        if unknown:
            raise click.BadParameter(
                f"{', '.join(map(repr, unknown))}: --yes takes one or more of {', '.join(YES_VALUES)}",
                param_hint="'--yes'",
            )
        every = assume_yes or "all" in values
        return cls(
            break_clients=every or break_clients or "break-clients" in values,
            delete_data=every or "delete-data" in values,
        )


def _clear_mode(delete_data: bool, mode: str | None) -> ClearMode:
    if mode is None:
        return ClearMode.ALWAYS if delete_data else ClearMode.NEVER
    try:
        return ClearMode(mode)
    except ValueError:
        choices = ", ".join(m.value for m in ClearMode)
        raise click.BadParameter(f"{mode!r} is not one of {choices}", param_hint="'--delete-data'") from None


@click.command(
    "publish",
    cls=EqualsValueCommand,
    equals_values={
        "--delete-data": "--delete-data-mode",
        "--clear-database": "--delete-data-mode",
        "--yes": "--yes-to",
    },
)
@database_argument(required=False)
@module_path_option
@click.option(
    "--bin-path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Publish a built program as it is: a .wasm module (Rust, C#) or a .js bundle (TypeScript).",
)
@click.option(
    "-c",
    "--delete-data",
    "--clear-database",
    "delete_data",
    is_flag=True,
    help="Delete all the database's data and publish the module as if new (asks for confirmation). "
    "--delete-data=on-conflict: only when the update needs a manual migration; --delete-data=never: never "
    "(the default).",
)
@click.option("--delete-data-mode", hidden=True, default=None)
@click.option(
    "--break-clients",
    is_flag=True,
    help="Accept an update that disconnects (and may break) the database's clients without asking. It never "
    "deletes data: see --delete-data.",
)
@click.option(
    "-y",
    "--yes",
    "assume_yes",
    is_flag=True,
    help="Do not ask for confirmation. --yes=VALUE[,VALUE] skips only some questions, as upstream: "
    "break-clients, delete-data, all (remote, migrate and skip-login are accepted and change nothing).",
)
@click.option("--yes-to", hidden=True, multiple=True)
@no_config_option
@env_option
@server_option
@pass_cli
def publish(
    cli: CliContext,
    database: str | None,
    module_path: Path | None,
    bin_path: Path | None,
    delete_data: bool,
    delete_data_mode: str | None,
    break_clients: bool,
    assume_yes: bool,
    yes_to: tuple[str, ...],
    no_config: bool,
    env: str | None,
    server: str | None,
) -> None:
    """Create a database NAME from a module, or update it.

    An update applies the schema migration the server plans; one that disconnects the clients is confirmed
    first (--break-clients skips that), and one that needs a manual migration is refused unless
    --delete-data deletes the data first. Without NAME a new database with only an identity is created.
    """
    clear_mode = _clear_mode(delete_data, delete_data_mode)
    if bin_path is not None and module_path is not None:
        raise CliError("pass either -p/--module-path or --bin-path, not both")
    config = None if no_config else _project_config(module_path, env)
    if config is None:
        answers = Answers.parse(assume_yes, yes_to, break_clients)
        _publish_one(cli, PublishTarget(database, server, module_path, bin_path), clear_mode, answers)
        return
    for file in config.files:
        click.echo(f"Using configuration from {file}")
    targets = select_targets(config, database)
    if len(targets) > 1 and (module_path is not None or bin_path is not None):
        raise CliError(
            "-p/--module-path and --bin-path name one module, but spacetime.json has several targets",
            hint="name the database to publish to select one target, or remove these arguments",
        )
    for target in targets:
        check_keys(target, PUBLISH_CONFIG_KEYS, PUBLISH_SUPPORTED_KEYS)
        chosen = PublishTarget.merge(config, target, database, server, module_path, bin_path)
        if chosen.database is None:
            raise CliError("Required key 'database' is missing from the config file or CLI")
        source = chosen.bin_path or _module_path(chosen.module_path)
        click.echo(f"Publishing module {source} to database '{chosen.database}'")
        config_breaks = target.fields.get("break_clients") is True
        answers = Answers.parse(assume_yes, yes_to, break_clients or config_breaks)
        _publish_one(cli, chosen, clear_mode, answers)


# upstream's publish keys in spacetime.json (crates/cli/src/subcommands/publish.rs, build_publish_schema), and
# those this CLI uses (the others build Rust or C# modules, or place databases in a cluster)
PUBLISH_CONFIG_KEYS = (
    "database",
    "server",
    "module_path",
    "build_options",
    "wasm_file",
    "js_file",
    "num_replicas",
    "break_clients",
    "anon_identity",
    "parent",
    "organization",
    "native_aot",
    "dotnet_version",
)
PUBLISH_SUPPORTED_KEYS = ("database", "server", "module_path", "wasm_file", "js_file", "break_clients")


@dataclass(frozen=True)
class PublishTarget:
    """Where to publish what: from the command line, or a spacetime.json target under it."""

    database: str | None
    server: str | None
    module_path: Path | None
    bin_path: Path | None

    @classmethod
    def merge(
        cls,
        config: ProjectConfig,
        target: ConfigTarget,
        database: str | None,
        server: str | None,
        module_path: Path | None,
        bin_path: Path | None,
    ) -> PublishTarget:
        """The command line's values, else the target's (upstream: the CLI takes precedence)."""
        fields = target.fields
        if module_path is None and bin_path is None:
            built = fields.get("wasm_file", fields.get("js_file"))
            if built is not None:
                bin_path = config.path(built, "wasm_file" if "wasm_file" in fields else "js_file")
            elif "module_path" in fields:
                module_path = project_module_path(config.path(fields["module_path"], "module_path"))
        configured_server = fields.get("server")
        if configured_server is not None and not isinstance(configured_server, str):
            raise CliError(f"spacetime.json: `server` must be a string, got {configured_server!r}")
        return cls(database or target.database, server or configured_server, module_path, bin_path)


def _project_config(module_path: Path | None, env: str | None) -> ProjectConfig | None:
    """The spacetime.json of the current directory (or above), else of the module's (upstream looks there
    too when -p is given)."""
    config = load_project_config(Path.cwd(), env)
    if config is None and module_path is not None:
        config = load_project_config(module_path if module_path.is_dir() else module_path.parent, env)
    return config


def _publish_one(cli: CliContext, target: PublishTarget, clear_mode: ClearMode, answers: Answers) -> None:
    if target.bin_path is not None:
        path, program = target.bin_path, _built_program(target.bin_path)
    else:
        path = _module_path(target.module_path)
        program = _package_and_validate(path)
    client = open_database(cli, target.server, target.database or "")
    click.echo(f"Publishing {path} ({_size(len(program))}) to {client.target.display}")
    query: dict[str, str] = {}
    if target.database is not None:
        query = _prepare_update(client, program, clear_mode, answers)
    _upload(client, program, query, named=target.database is not None)


def _module_path(module_path: Path | None) -> Path:
    if module_path is not None:
        if not module_path.exists():
            raise CliError(f"the module path {module_path} does not exist")
        return module_path
    if Path(DEFAULT_MODULE_FILE).is_file():
        return Path(DEFAULT_MODULE_FILE)
    if is_typescript_project(Path(".")):
        return Path(".")
    if Path("__init__.py").is_file():
        return Path(".")
    raise CliError(
        f"no module to publish: there is no {DEFAULT_MODULE_FILE} here and this directory is neither a package nor "
        "a TypeScript module project",
        hint="pass -p/--module-path with a .py file, a package directory or a TypeScript project",
    )


def _package_and_validate(path: Path) -> bytes:
    """The program bytes, after loading the module here: a broken module never reaches the server. A
    TypeScript module project is bundled instead; the server validates the bundle (this process runs no JS)."""
    from spacetimedb.cli.jsbuild import build_typescript
    from spacetimedb.module import ModuleError, load_module, package_program

    if is_typescript_project(path):
        return build_typescript(path)

    try:
        program, kind = package_program(path)
        loaded = load_module(program, kind, name=path.name if path.is_file() else "__init__.py")
    except ModuleError as error:
        # The loader lists every problem on its own indented line; one line reads better here.
        raise CliError(
            f"cannot publish {path}: {' '.join(str(error).split())}",
            hint="fix the module and publish again (nothing was uploaded)",
        ) from None
    loaded.unload()
    return program


_WASM_MAGIC = b"\0asm"
BUILT_SUFFIXES = (".wasm", ".js", ".mjs")


def _built_program(path: Path) -> bytes:
    """The bytes of a program built by SpacetimeDB's toolchains. The server validates it (in a sandboxed
    worker, as it will run it): this process never runs foreign code."""
    if not path.is_file():
        raise CliError(f"the program {path} does not exist")
    if path.suffix not in BUILT_SUFFIXES:
        raise CliError(
            f"--bin-path takes a .wasm module or a .js bundle, got {path.name}",
            hint="publish a Python module with -p/--module-path",
        )
    program = path.read_bytes()
    if path.suffix == ".wasm" and not program.startswith(_WASM_MAGIC):
        raise CliError(f"{path} is not a WebAssembly module (it does not start with \\0asm)")
    return program


CLEAR_QUERY = {"clear": "true"}


def _prepare_update(
    client: DatabaseClient, program: bytes, clear_mode: ClearMode, answers: Answers
) -> dict[str, str]:
    """For an existing database: show what will change and confirm, as upstream's publish does
    (crates/cli/src/subcommands/publish.rs). Returns the upload's query: clear the data, or accept the
    planned migration."""
    plan = _pre_publish(client, program)
    if plan is None:  # a new database: nothing to migrate, nothing to delete
        return {}
    if clear_mode is ClearMode.ALWAYS:
        _confirm_clear(client, answers)
        return CLEAR_QUERY
    if needs_manual_migration(plan) and clear_mode is ClearMode.ON_CONFLICT:
        _print_reasons(plan)
        click.echo("Proceeding with database clear due to --delete-data=on-conflict.")
        _confirm_clear(client, answers)
        return CLEAR_QUERY
    show_migration_plan(client, plan)  # refuses a manual migration
    if plan["AutoMigrate"].get("break_clients"):
        confirm(
            "The above changes will BREAK existing clients. Do you want to proceed?",
            answers.break_clients,
            refusal=f"not updating {client.database!r}",
            hint="pass --break-clients (or --yes=break-clients) to accept that",
        )
    return accept_migration_query(plan)


def _confirm_clear(client: DatabaseClient, answers: Answers) -> None:
    click.echo(f"This will DESTROY the current {client.database} module, and ALL corresponding data.")
    confirm(
        f"Are you sure you want to proceed? [deleting {client.database}]",
        answers.delete_data,
        refusal=f"not deleting the data of {client.database!r}",
        hint="pass -y/--yes (or --yes=delete-data) to delete it and publish",
    )


def _print_reasons(plan: dict[str, Any]) -> None:
    click.echo("This update cannot be applied automatically:")
    for line in str(plan["ManualMigrate"].get("reason", "")).splitlines():
        click.echo(f"  {line}")


def needs_manual_migration(plan: dict[str, Any]) -> bool:
    return isinstance(plan.get("ManualMigrate"), dict)


def show_migration_plan(client: DatabaseClient, plan: dict[str, Any]) -> bool:
    """Print the server's migration plan; a plan that needs a manual migration is printed and refused (a
    CliError). Returns whether the automatic migration changes anything."""
    manual = plan.get("ManualMigrate")
    if isinstance(manual, dict):
        reason = str(manual.get("reason", ""))
        _print_reasons(plan)
        click.echo("Aborting publish due to required manual migration.")
        # one reason per line (upstream's form); on the one error line they are separated by semicolons
        reasons = "; ".join(line.strip() for line in reason.splitlines() if line.strip())
        raise CliError(
            f"publishing to {client.shown} needs a manual migration: {summary(reasons)}",
            hint="make the change compatible (e.g. add columns at the end with defaults, or add a new table), "
            "or pass -c/--delete-data (or --delete-data=on-conflict) to delete all its data and publish",
        )
    auto = plan.get("AutoMigrate")
    if not isinstance(auto, dict):
        raise CliError(
            f"the server's migration plan for {client.shown} is not understood: {summary(str(plan))}"
        )
    migrate_plan = str(auto.get("migrate_plan", ""))
    click.echo(migrate_plan.rstrip("\n"))
    if auto.get("break_clients"):
        click.echo("The above changes will disconnect (and may BREAK) existing clients.")
    return not _no_changes(migrate_plan)


def accept_migration_query(plan: dict[str, Any]) -> dict[str, str]:
    """The upload's query that accepts the automatic migration ``plan`` (after any confirmation): its token
    with the ``BreakClients`` policy, as upstream's CLI sends it. The server refuses an update that disconnects
    the clients without them, and an update other than the planned one (the token names both programs)."""
    return {"token": str(plan["AutoMigrate"]["token"]), "policy": "BreakClients"}


def _no_changes(migrate_plan: str) -> bool:
    # The plan of an identical schema says so; republishing it needs no confirmation (anything else does).
    return any(line.strip() == "No changes." for line in migrate_plan.splitlines())


def _pre_publish(client: DatabaseClient, program: bytes) -> dict[str, Any] | None:
    """The server's plan for updating the database with ``program``, or None if the database does not exist."""
    style = "AnsiColor" if sys.stdout.isatty() and "NO_COLOR" not in os.environ else "NoColor"
    response = client.request(
        "POST",
        "/pre_publish",
        query={"style": style, "pretty_print_style": style},
        body=program,
        content_type="application/octet-stream",
        timeout=PUBLISH_TIMEOUT_SECONDS,
    )
    if response.status == 404 and response.text().startswith("No such database"):
        return None
    client.raise_for_shared_status(response.status, response.text())
    if response.status == 400:
        raise CliError(f"the server refused the module: {summary(response.text())}")
    payload = client.check(response).json()
    if not isinstance(payload, dict):
        raise CliError(f"POST {response.url} did not return a migration plan")
    return payload


def _upload(client: DatabaseClient, program: bytes, query: dict[str, str], *, named: bool) -> None:
    response = client.request(
        "PUT" if named else "POST",
        query=query or None,
        body=program,
        content_type="application/octet-stream",
        timeout=PUBLISH_TIMEOUT_SECONDS,
    )
    if response.status == 403 and not response.text().startswith("Database is locked"):
        raise CliError(
            f"the database {client.shown} belongs to another identity",
            hint="publish under another name, or use the owner's identity "
            f"(`spacetime login show -s {client.target.label}` shows yours)",
        )
    client.raise_for_shared_status(response.status, response.text())
    if response.status == 400:
        raise CliError(summary(response.text()), hint="fix the module and publish again")
    payload = client.check(response).json()
    success = payload.get("Success") if isinstance(payload, dict) else None
    if not isinstance(success, dict):
        raise CliError(
            f"{response.method} {response.url} returned an unexpected reply: {summary(response.text())}"
        )
    op = "Created new" if success.get("op") == "created" else "Updated"
    identity = success.get("database_identity")
    name = success.get("domain")
    if name:
        click.echo(f"{op} database with name: {name}, identity: {identity}")
    else:
        click.echo(f"{op} database with identity: {identity}")


def _size(count: int) -> str:
    return f"{count} bytes" if count < 1024 else f"{count / 1024:.1f} KiB"
