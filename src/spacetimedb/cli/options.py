"""Options shared by several commands, so they are spelled and documented the same everywhere."""

from __future__ import annotations

from pathlib import Path

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

module_path_option = click.option(
    "-p",
    "--module-path",
    type=click.Path(path_type=Path),
    default=None,
    help="The module: a .py file or a package directory. Default: ./module.py, else the current directory "
    "if it is a package.",
)


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
