"""Errors a command raises to end with one clear line on stderr (plus an optional hint)."""

from __future__ import annotations

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C


class CliError(Exception):
    """A failure the user can act on: printed as ``error: <message>`` and ``hint: <hint>``, no traceback.

    ``details`` are lines printed as they are between the two, for an error whose upstream form spans several
    lines that scripts read (the list of a database's reducers after "No such reducer")."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        exit_code: int = EXIT_FAILURE,
        details: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code
        self.details = details


class ConfigError(CliError):
    """The config file exists but cannot be used as it is."""


class TerminatedBySignal(BaseException):
    """Raised by our SIGTERM/SIGHUP handlers so that ``finally`` blocks (the lock release) still run.

    A BaseException, like KeyboardInterrupt, so that no ``except Exception`` in a command can swallow it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum
