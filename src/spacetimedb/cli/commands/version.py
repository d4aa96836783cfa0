"""``spacetime version``: the versions of the CLI and of the installed package."""

from __future__ import annotations

import json
import platform
from importlib import metadata

import click

from spacetimedb import __version__
from spacetimedb.cli.options import json_option

DISTRIBUTION_NAME = "spacetimedb-py"


@click.command("version")
@json_option
def version(as_json: bool) -> None:
    """Print the versions of the CLI, the installed package and Python."""
    versions = {
        "cli": __version__,
        "package": _installed_package_version(),
        "python": platform.python_version(),
    }
    if as_json:
        click.echo(json.dumps(versions, indent=2))
        return
    click.echo(f"spacetime CLI {versions['cli']}")
    click.echo(f"{DISTRIBUTION_NAME} {versions['package'] or '(not installed, running from source)'}")
    click.echo(f"Python {versions['python']}")


def _installed_package_version() -> str | None:
    try:
        return metadata.version(DISTRIBUTION_NAME)
    except metadata.PackageNotFoundError:
        return None
