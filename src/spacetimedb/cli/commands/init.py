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
MODULE_SUBDIRECTORY = "spacetimedb"  # upstream's: where `init --project-path` puts the module


@click.command("init")
@click.option(
    "--lang",
    type=click.Choice(LANGUAGES),
    default=None,
    help="The module language. Default: python (with --non-interactive it must be given, as upstream).",
)
@click.option(
    "--project-path",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Upstream's layout: the project directory, with the module in PROJECT_PATH/spacetimedb/ (NAME is then "
    "the project's name).",
)
@click.option(
    "--non-interactive",
    is_flag=True,
    help="As upstream: never ask (this CLI never does), so --lang is required.",
)
@click.argument("directory", type=click.Path(path_type=Path), metavar="DIR|NAME")
def init(lang: str | None, project_path: Path | None, non_interactive: bool, directory: Path) -> None:
    """Create a new module project in DIR (which must not exist yet, or be empty).

    Upstream's form, `spacetime init --non-interactive --lang python --project-path PATH NAME`, writes the
    module into PATH/spacetimedb/ instead (PATH defaults to ./NAME with --non-interactive).
    """
    if lang is None and non_interactive:
        raise CliError(
            "--non-interactive needs --lang: there is nobody to ask for the module's language",
            hint=f"pass --lang {LANGUAGES[0]}",
        )
    language = lang or LANGUAGES[0]
    project = directory.name
    if project_path is not None or non_interactive:
        # upstream's project layout (smoketest standalone/create_project.rs): the module in <project>/spacetimedb
        directory = (project_path or directory) / MODULE_SUBDIRECTORY
    else:
        project = directory.resolve().name
    _check_empty(directory)
    database = database_name_for(project)
    written = _render_template(TEMPLATES / language, directory, {"project": project, "database": database})
    click.echo(f"Created a {language} module project in {directory}:")
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
