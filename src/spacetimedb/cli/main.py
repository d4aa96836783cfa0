"""The ``spacetime`` entry point: the root command group, lazy command loading, and the error boundary.

Everything a command raises ends here as one ``error:`` line on stderr (plus an optional ``hint:`` line)
and a non-zero exit status; a traceback is shown only with ``SPACETIME_TRACEBACK=1``. Ctrl-C exits 130 and
SIGTERM/SIGHUP exit 128+N, quietly, after ``finally`` blocks (the config lock release) have run.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import click

from spacetimedb.cli.commands import COMMANDS, LazyCommand
from spacetimedb.cli.context import CliContext, resolve_config_path
from spacetimedb.cli.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE, CliError, TerminatedBySignal

TRACEBACK_ENV = "SPACETIME_TRACEBACK"
CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when one of them is about to run.

    ``lazy_commands`` maps a name to a :class:`LazyCommand` (``"module:attribute"`` plus the one-line help
    that ``--help`` prints), so listing the commands imports nothing.
    """

    def __init__(
        self, *args: Any, lazy_commands: Mapping[str, LazyCommand] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands: dict[str, LazyCommand] = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in self.lazy_commands:
            command = _import_command(cmd_name, self.lazy_commands[cmd_name].target)
            self.add_command(command, cmd_name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, self._short_help(ctx, name, formatter.width)) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def _short_help(self, ctx: click.Context, name: str, width: int) -> str:
        # The registry's text even when the module is loaded, so the listing never depends on what ran.
        if name in self.lazy_commands:
            return self.lazy_commands[name].short_help
        return self.commands[name].get_short_help_str(limit=width)


def _import_command(name: str, target: str) -> click.Command:
    module_name, _, attribute = target.partition(":")
    command = getattr(importlib.import_module(module_name), attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"command {name!r}: {target} is not a click command")
    return command


@click.group(
    name="spacetime",
    cls=LazyGroup,
    lazy_commands=COMMANDS,
    context_settings=CONTEXT_SETTINGS,
)
@click.option(
    "--config-path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="PATH",
    help="The CLI config file. Default: $SPACETIME_CONFIG_DIR/cli.toml, else ~/.config/spacetime/cli.toml.",
)
@click.option(
    "--root-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    metavar="DIR",
    help="As upstream: keep the CLI config in DIR/config/cli.toml and `spacetime start`'s data in DIR/data.",
)
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, root_dir: Path | None) -> None:
    """SpacetimeDB in Python: a database that is also your application server."""
    ctx.obj = CliContext(config_path=resolve_config_path(config_path, root_dir=root_dir), root_dir=root_dir)


def run(argv: Sequence[str] | None = None) -> int:
    """Run one ``spacetime`` invocation and return its exit status; never raises (but SystemExit)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        with cli.make_context("spacetime", args) as ctx:
            cli.invoke(ctx)
        return 0
    except click.exceptions.Exit as done:  # --help, ctx.exit(n)
        return done.exit_code
    except click.exceptions.NoArgsIsHelpError as error:  # a bare group: show its help, like click does
        click.echo(error.ctx.get_help())
        return EXIT_USAGE
    except click.UsageError as error:
        return _report(error.format_message(), _usage_hint(error.ctx), EXIT_USAGE)
    except click.Abort as aborted:
        if isinstance(aborted.__cause__, KeyboardInterrupt):
            return EXIT_INTERRUPTED
        return _report("aborted", None, EXIT_FAILURE)
    except click.ClickException as error:
        return _report(error.format_message(), None, error.exit_code)
    except CliError as error:
        return _report(error.message, error.hint, error.exit_code, error.details)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except TerminatedBySignal as terminated:
        return terminated.exit_code
    except BrokenPipeError:
        _silence_stdout()  # the reader went away (`spacetime server list | head`): not our error
        return EXIT_FAILURE
    except OSError as error:
        detail = f"{error.strerror}: {error.filename}" if error.strerror and error.filename else str(error)
        return _report(detail, None, EXIT_FAILURE)
    except Exception as error:
        return _report_internal_error(error)


def main() -> NoReturn:
    """The console script: ``spacetime = spacetimedb.cli.main:main``."""
    _install_signal_handlers()
    status = run()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    sys.exit(status)


def _report(message: str, hint: str | None, exit_code: int, details: Sequence[str] = ()) -> int:
    sys.stderr.write(f"error: {_one_line(message)}\n")
    for line in details:
        sys.stderr.write(f"{line}\n")
    if hint:
        sys.stderr.write(f"hint: {_one_line(hint)}\n")
    return exit_code


def _report_internal_error(error: Exception) -> int:
    if os.environ.get(TRACEBACK_ENV) == "1":
        import traceback

        traceback.print_exception(error)
    return _report(
        f"internal error: {type(error).__name__}: {error}",
        f"this is a bug in spacetime; run again with {TRACEBACK_ENV}=1 to see where it happened",
        EXIT_FAILURE,
    )


def _usage_hint(ctx: click.Context | None) -> str:
    command_path = ctx.command_path if ctx is not None else "spacetime"
    return f"see `{command_path} --help`"


def _one_line(text: str) -> str:
    return " ".join(text.strip().splitlines())


def _silence_stdout() -> None:
    # Python would report the failed flush of a closed pipe at exit; point stdout at /dev/null instead.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _install_signal_handlers() -> None:
    """SIGTERM and SIGHUP raise, like SIGINT already does, so that cleanup runs on every exit path."""
    handler: Callable[[int, FrameType | None], None] = _raise_terminated
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is not signal.SIG_IGN:  # respect nohup
            signal.signal(signum, handler)


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise TerminatedBySignal(signum)


if __name__ == "__main__":
    main()
