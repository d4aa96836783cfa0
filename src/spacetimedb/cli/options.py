"""Options shared by several commands, so they are spelled and documented the same everywhere."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

server_option = click.option(
    "-s",
    "--server",
    "server",
    metavar="NICKNAME_OR_URL",
    default=None,
    help="The server to talk to: a saved nickname or host, or a URL. Default: the default server.",
)

json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")

yes_option = click.option("-y", "--yes", "assume_yes", is_flag=True, help="Do not ask for confirmation.")

anonymous_option = click.option(
    "--anonymous",
    is_flag=True,
    help="Act as a new identity obtained for this command alone, not the saved one (nothing is saved).",
)


def project_module_path(value: Path) -> Path:
    """A project directory that is not a package but holds ``module.py`` (upstream's ``--module-path`` names the
    module's directory, e.g. the ``spacetimedb/`` of ``spacetime init --project-path``) means that file."""
    if value.is_dir() and not (value / "__init__.py").exists():
        module = value / "module.py"
        if module.is_file():
            return module
    return value


def project_module(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    return None if value is None else project_module_path(value)


no_config_option = click.option(
    "--no-config", is_flag=True, help="Ignore spacetime.json (and its local and environment files)."
)

env_option = click.option(
    "--env",
    default=None,
    metavar="ENV",
    help="Also read spacetime.ENV.json and spacetime.ENV.local.json over spacetime.json.",
)


module_path_option = click.option(
    "-p",
    "--module-path",
    type=click.Path(path_type=Path),
    default=None,
    callback=project_module,
    help="The module: a .py file or a package directory (or a directory holding module.py). Default: "
    "./module.py, else the current directory if it is a package.",
)


class EqualsValueCommand(click.Command):
    """A command with flags that also take a value, but only when attached with ``=`` (upstream's
    ``require_equals``): ``--delete-data`` alone is a flag, ``--delete-data=on-conflict`` gives a value, and
    ``--delete-data my-db`` leaves ``my-db`` to the arguments. ``equals_values`` maps each such flag to the
    hidden option that receives the attached value."""

    def __init__(self, *args: Any, equals_values: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.equals_values = dict(equals_values)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        rewritten: list[str] = []
        for position, arg in enumerate(args):
            if arg == "--":
                rewritten += args[position:]
                break
            flag, equals, value = arg.partition("=")
            hidden = self.equals_values.get(flag) if equals else None
            rewritten += [hidden, value] if hidden else [arg]
        return super().parse_args(ctx, rewritten)


BOOLEAN_WORDS = {"true": True, "false": False}


class ConfirmedCommand(click.Command):
    """A command whose ``--confirmed`` flag also takes upstream's spelling with a value.

    Upstream SpacetimeDB's CLI writes ``--confirmed true`` / ``--confirmed false`` (``--confirmed=true``), and
    scripts written for it do too; ours has always taken a bare ``--confirmed``. Both are accepted: a ``true`` or
    ``false`` right after the flag is its value, anything else is the next argument as before."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _confirmed_as_flag(args))


def _confirmed_as_flag(args: list[str]) -> list[str]:
    rewritten: list[str] = []
    rest = iter(args)
    for arg in rest:
        if arg == "--":
            rewritten += [arg, *rest]
            break
        name, has_value, value = arg.partition("=")
        if name != "--confirmed":
            rewritten.append(arg)
            continue
        if has_value:
            if value.lower() not in BOOLEAN_WORDS:
                raise click.BadParameter(f"{value!r} is not true or false", param_hint="'--confirmed'")
            confirmed = BOOLEAN_WORDS[value.lower()]
        else:
            following = next(rest, None)
            if following is not None and following.lower() not in BOOLEAN_WORDS:
                rewritten += ["--confirmed", following]
                continue
            confirmed = True if following is None else BOOLEAN_WORDS[following.lower()]
        if confirmed:
            rewritten.append("--confirmed")
    return rewritten
