"""``spacetime init``: a new module project from a template (``spacetimedb/cli/templates/<lang>/``).

Each ``NAME.tmpl`` becomes ``NAME`` (``gitignore.tmpl`` becomes ``.gitignore``) with ``{{project}}`` and
``{{database}}`` replaced; plain replacement rather than ``str.format`` because the files are full of braces.
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from spacetimedb.cli.errors import CliError

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
LANGUAGES = ("python",)
RENAMES = {"gitignore": ".gitignore"}
FALLBACK_DATABASE = "my-module"


@click.command("init")
@click.option(
    "--lang",
    type=click.Choice(LANGUAGES),
    default="python",
    show_default=True,
    help="The module language.",
)
@click.argument("directory", type=click.Path(path_type=Path), metavar="DIR")
def init(lang: str, directory: Path) -> None:
    """Create a new module project in DIR (which must not exist yet, or be empty)."""
    _check_empty(directory)
    project = directory.resolve().name
    database = database_name_for(project)
    written = _render_template(TEMPLATES / lang, directory, {"project": project, "database": database})
    click.echo(f"Created a {lang} module project in {directory}:")
    for path in written:
        click.echo(f"  {path.relative_to(directory)}")
    click.echo("\nNext steps:")
    click.echo(f"  cd {directory}")
    click.echo("  spacetime start                 # in another terminal, unless a server is running")
    click.echo(f"  spacetime publish {database}")
    click.echo(f"  spacetime call {database} add '\"Alice\"'")
    click.echo(f'  spacetime sql {database} "SELECT * FROM person"')


def database_name_for(project: str) -> str:
    """A valid database name from a directory name: lower case, runs of other characters become one dash."""
    name = re.sub(r"[^a-z0-9]+", "-", project.lower()).strip("-")
    return name or FALLBACK_DATABASE


def _check_empty(directory: Path) -> None:
    if directory.is_dir():
        if any(directory.iterdir()):
            raise CliError(
                f"{directory} is not empty: `spacetime init` only writes into a new or empty directory",
                hint="choose another directory name",
            )
    elif directory.exists():
        raise CliError(f"{directory} exists and is not a directory")


def _render_template(source: Path, directory: Path, values: dict[str, str]) -> list[Path]:
    templates = sorted(source.glob("*.tmpl"))
    if not templates:
        raise CliError(f"the template {source} is missing: the spacetimedb installation is incomplete")
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for template in templates:
        name = template.name.removesuffix(".tmpl")
        target = directory / RENAMES.get(name, name)
        text = template.read_text(encoding="utf-8")
        for key, value in values.items():
            text = text.replace("{{" + key + "}}", value)
        if target.suffix == ".md":
            text = align_comments(text)
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written


_COMMENTED = re.compile(r"^(?P<command>.*?\S) {2,}(?P<comment># .*)$")


def align_comments(text: str) -> str:
    """Line up the ``# comments`` of each fenced code block in one column, two spaces after its longest command:
    the names substituted into a template have any length, so the template's own alignment cannot hold."""
    lines = text.split("\n")
    block: list[int] = []  # indexes of the lines inside the current fence
    inside = False
    for number, line in enumerate([*lines, "```"]):
        if line.startswith("```"):
            if inside:
                matches = {i: _COMMENTED.match(lines[i]) for i in block}
                found = {i: m for i, m in matches.items() if m is not None}
                if found:
                    width = max(len(m["command"]) for m in found.values()) + 2
                    for i, m in found.items():
                        lines[i] = m["command"].ljust(width) + m["comment"]
            inside, block = not inside, []
        elif inside and number < len(lines):
            block.append(number)
    return "\n".join(lines)
