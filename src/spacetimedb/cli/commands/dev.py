"""``spacetime dev``: publish a module, regenerate its bindings, and do both again whenever its files change.

Like upstream's ``spacetime dev`` without its client runner: the database is NAME (else spacetime.json's
``database``, else the name ``spacetime init`` gives the module's directory; spacetime.json may also give the
server and the module path, and ``dev.run``, which is printed, not run), the bindings go to ``--bindings-dir`` (default
``module_bindings`` beside the module) and the typed ``ctx.db`` stub (``<module>_db.pyi``) beside the module.
Every update prints the server's migration plan and is applied without a question; one the server refuses
(a manual migration) is printed, and the loop waits for the next change (``-c`` deletes the data instead).

When the server (``-s``, else the default server) is a loopback address where nothing answers, dev starts
``spacetime start`` there itself, in its own session (so that the terminal's Ctrl-C reaches only dev), and
stops it when dev stops. Ctrl-C stops dev: exit 130, as everywhere in the CLI.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import click

from spacetimedb.cli.commands._database import DatabaseClient, database_argument, open_database
from spacetimedb.cli.commands.generate import _from_module, _write
from spacetimedb.cli.commands.init import database_name_for
from spacetimedb.cli.commands.publish import (
    CLEAR_QUERY,
    PUBLISH_CONFIG_KEYS,
    PublishTarget,
    _module_path,
    _package_and_validate,
    _pre_publish,
    _upload,
    accept_migration_query,
    needs_manual_migration,
    show_migration_plan,
)
from spacetimedb.cli.context import CliContext, pass_cli
from spacetimedb.cli.errors import CliError
from spacetimedb.cli.options import module_path_option, no_config_option, server_option
from spacetimedb.cli.project_config import check_keys, load_project_config, select_targets
from spacetimedb.cli.servers import ServerTarget

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
SERVER_START_TIMEOUT_SECONDS = 60.0
SERVER_STOP_TIMEOUT_SECONDS = 30.0
DEBOUNCE_MILLISECONDS = 300  # editors write a file in several steps; one change, one publish
POLL_MILLISECONDS = 500  # how often the sources are compared even without a watcher event
DEFAULT_BINDINGS_DIR = "module_bindings"


@click.command("dev")
@database_argument(required=False)
@module_path_option
@click.option(
    "-o",
    "--bindings-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Where to regenerate the client bindings. Default: {DEFAULT_BINDINGS_DIR} beside the module.",
)
@click.option(
    "-l",
    "--lang",
    type=click.Choice(["python", "typescript"]),
    default="python",
    show_default=True,
    help="The language of the client bindings.",
)
@click.option("--skip-generate", is_flag=True, help="Publish only: no client bindings, no ctx.db stub.")
@click.option(
    "-c",
    "--delete-data",
    is_flag=True,
    help="When an update needs a manual migration, delete all the database's data and publish (no question).",
)
@no_config_option
@click.option(
    "--env",
    default="dev",
    show_default=True,
    metavar="ENV",
    help="Also read spacetime.ENV.json and spacetime.ENV.local.json over spacetime.json.",
)
@server_option
@pass_cli
def dev(
    cli: CliContext,
    database: str | None,
    module_path: Path | None,
    bindings_dir: Path | None,
    lang: str,
    skip_generate: bool,
    delete_data: bool,
    no_config: bool,
    env: str,
    server: str | None,
) -> None:
    """Publish a module to NAME, regenerate its client bindings, then watch its files and do both again on
    every change, until Ctrl-C.

    Starts a local server first if the server is on this machine and none is running (and stops it at the
    end). Each update prints its migration plan; an update that needs a manual migration is refused and
    printed, and dev waits for the next change (unless -c deletes the data).
    """
    configured = None if no_config else _configured_target(database, server, module_path, env)
    if configured is not None:
        database, server, module_path = configured.database, configured.server, configured.module_path
    path = _module_path(module_path).resolve()
    project_dir = path.parent
    name = database or database_name_for(project_dir.name if path.is_file() else path.name)
    out_dir = bindings_dir if bindings_dir is not None else project_dir / DEFAULT_BINDINGS_DIR
    target = cli.resolve_server(server)
    with _server_running(target):
        client = open_database(cli, server, name)
        loop = _DevLoop(client, path, None if skip_generate else out_dir.resolve(), lang, delete_data)
        click.echo(f"Database: {name} on {target.display}")
        loop.update()
        loop.watch()


def _configured_target(
    database: str | None, server: str | None, module_path: Path | None, env: str
) -> PublishTarget | None:
    """The database, server and module spacetime.json gives (the command line's values first), as upstream's
    dev reads them; None without a spacetime.json. Dev serves one database: a config with several targets
    needs NAME to pick one."""
    config = load_project_config(Path.cwd(), env)
    if config is None:
        return None
    for file in config.files:
        click.echo(f"Using configuration from {file}")
    if config.dev_run is not None:
        click.echo(f"Note: this CLI does not start the client (dev.run: {config.dev_run}); run it yourself.")
    targets = select_targets(config, database)
    if len(targets) > 1:
        names = ", ".join(t.database or "?" for t in targets)
        raise CliError(
            f"spacetime.json has {len(targets)} database targets ({names}); dev serves one",
            hint="name the database: spacetime dev NAME",
        )
    (target,) = targets
    check_keys(target, PUBLISH_CONFIG_KEYS, DEV_SUPPORTED_KEYS)
    return PublishTarget.merge(config, target, database, server, module_path, None)


# dev publishes Python modules only (no --bin-path), and asks nothing (so `break-clients` changes nothing)
DEV_SUPPORTED_KEYS = ("database", "server", "module_path", "break_clients")


class _DevLoop:
    """One module, published to one database: publish and regenerate now, and again whenever it changes."""

    def __init__(
        self, client: DatabaseClient, path: Path, out_dir: Path | None, lang: str, delete_data: bool
    ) -> None:
        self.client = client
        self.path = path
        self.out_dir = out_dir
        self.lang = lang
        self.delete_data = delete_data
        self.published: dict[Path, tuple[int, int]] = {}

    def update(self) -> None:
        """Publish, then regenerate; a failure is printed (not raised): the loop goes on."""
        self.published = self._sources()  # before reading them: an edit made while publishing is seen next
        try:
            self._publish()
            if self.out_dir is not None:
                self._generate(self.out_dir)
        except CliError as error:
            click.echo(f"error: {' '.join(error.message.split())}", err=True)
            if error.hint:
                click.echo(f"hint: {error.hint}", err=True)
            click.echo("Waiting for the next change...")
            return
        click.echo("Watching for changes (Ctrl-C stops)...")

    def _publish(self) -> None:
        program = _package_and_validate(self.path)
        click.echo(f"Publishing {self.path.name} to {self.client.shown}")
        plan = _pre_publish(self.client, program)
        query: dict[str, str] = {}
        if plan is not None:
            if self.delete_data and needs_manual_migration(plan):
                click.echo(
                    f"This update needs a manual migration: deleting all the data of {self.client.shown}"
                )
                query = CLEAR_QUERY
            else:
                show_migration_plan(self.client, plan)
                query = accept_migration_query(plan)
        _upload(self.client, program, query, named=True)

    def _generate(self, out_dir: Path) -> None:
        from spacetimedb.codegen import CodegenError
        from spacetimedb.codegen import generate as generate_bindings
        from spacetimedb.codegen.python_module import write_module_stub

        raw = _from_module(self.path)
        try:
            files = generate_bindings(raw, self.lang)
        except CodegenError as exc:
            raise CliError(f"cannot generate {self.lang} bindings: {exc}") from None
        _write(out_dir, files, self.lang)
        click.echo(f"Generated {len(files)} {self.lang} file(s) in {out_dir}")
        stub = write_module_stub(self.path)
        click.echo(f"Wrote the ctx.db types to {stub}")

    def watch(self) -> None:
        """Republish whenever the module's Python files differ from what was last published, until Ctrl-C.

        The watcher's events only wake the loop (and it wakes every half second anyway): what decides is the
        files' modification times and sizes against those of the last publish, so an edit made while the
        watcher was starting, or during a publish, is never missed, and an editor's several writes of one
        save make one update."""
        import watchfiles

        root = self.path if self.path.is_dir() else self.path.parent
        for _changes in watchfiles.watch(
            root,
            debounce=DEBOUNCE_MILLISECONDS,
            rust_timeout=POLL_MILLISECONDS,
            yield_on_timeout=True,
            raise_interrupt=True,
        ):
            if self._sources() != self.published:
                click.echo("\nFile change detected, publishing again...")
                self.update()

    def _sources(self) -> dict[Path, tuple[int, int]]:
        """Each file that is published, with its modification time and size."""
        if self.path.is_file():
            files = [self.path]
        else:
            files = [
                path
                for path in self.path.rglob("*.py")
                if "__pycache__" not in path.parts
                and (self.out_dir is None or not path.is_relative_to(self.out_dir))
            ]
        signature: dict[Path, tuple[int, int]] = {}
        for path in files:
            try:
                status = path.stat()
            except OSError:  # deleted between the listing and the stat: absent, like a deleted file
                continue
            signature[path] = (status.st_mtime_ns, status.st_size)
        return signature


@contextmanager
def _server_running(target: ServerTarget) -> Iterator[None]:
    """Yield with the server answering; start one first (and stop it after) if it is local and down."""
    if _answers(target):
        yield
        return
    parts = urlsplit(target.url)
    if parts.hostname not in LOOPBACK_HOSTS or parts.scheme != "http":
        raise CliError(
            f"the server {target.display} does not answer",
            hint="start it, or pass -s with a server that is running",
        )
    port = parts.port or 80
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    log_path = _server_log_path()
    click.echo(f"No server answers at {target.url}: starting one (its log: {log_path})")
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "spacetimedb", "start", "--listen-addr", f"{host}:{port}"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the terminal's Ctrl-C goes to dev, which stops the server in order
        )
    try:
        _wait_until_answering(target, process, log_path)
        yield
    finally:
        _stop(process)
        click.echo("Stopped the server dev started", err=True)


def _answers(target: ServerTarget) -> bool:
    from spacetimedb.cli import http

    try:
        return http.request("GET", target.endpoint("/v1/ping"), timeout=5.0).ok
    except http.ServerUnreachableError:
        return False


def _server_log_path() -> Path:
    from spacetimedb.cli.commands.start import default_data_dir

    directory = default_data_dir().parent
    directory.mkdir(parents=True, exist_ok=True)
    return directory / "dev-server.log"


def _wait_until_answering(target: ServerTarget, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_SECONDS
    while not _answers(target):
        if process.poll() is not None:
            last = (log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines() or [""])[-1]
            raise CliError(
                f"the server dev started at {target.url} exited ({process.returncode}): {last}",
                hint=f"its log is {log_path}",
            )
        if time.monotonic() > deadline:
            raise CliError(
                f"the server dev started at {target.url} did not answer within "
                f"{SERVER_START_TIMEOUT_SECONDS:.0f} s",
                hint=f"its log is {log_path}",
            )
        time.sleep(0.2)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=SERVER_STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
