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
