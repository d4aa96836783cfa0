"""The ``spacetime`` command line (layer 14): owns the ``spacetime`` command, its config file and lock.

It may import every other layer, but only lazily, inside the command that needs it, so that
``spacetime --help`` imports click and this package's small core only (about 60 ms; budget 300 ms, see
``bench/cli_startup.py``). Nothing imports ``cli``.

Map
    ``main``        the root group, :class:`~spacetimedb.cli.main.LazyGroup`, the error boundary, signals
    ``commands/``   one module per top-level command, and the registry ``COMMANDS`` in ``__init__``
    ``context``     :class:`CliContext` (``ctx.obj``) with the config and server helpers, ``pass_cli``
    ``config``      ``cli.toml`` model, ``read_config`` / ``edit_config``, atomic saves
    ``lock``        the ``cli.lock`` protocol (its docstring is the specification)
    ``servers``     URL parsing, saved servers, ``-s/--server`` resolution, host keys
    ``identity``    tokens: obtain from a server, save per host, reuse
    ``http``        the stdlib HTTP helper for commands that talk to a server
    ``options``     shared click options (``-s/--server``, ``--json``, ``--yes``)
    ``errors``      :class:`CliError` -- raise it for anything the user should read

Adding a command
    1. Write ``spacetimedb/cli/commands/<name>.py`` defining a ``click.Command`` or ``click.Group``.
       Import heavy things (the server, aiohttp, rich) inside the function body, not at module level.
    2. Add one line to ``COMMANDS`` in ``spacetimedb/cli/commands/__init__.py``: the ``"module:attribute"``
       and the one-line help ``spacetime --help`` shows without importing the module.

Inside a command
    * ``@pass_cli`` gives the :class:`~spacetimedb.cli.context.CliContext`.
    * ``@server_option`` adds ``-s/--server NICKNAME_OR_URL``; ``target = cli.resolve_server(server)``
      turns it (or None: the default server) into a :class:`~spacetimedb.cli.servers.ServerTarget` with
      ``.url``, ``.endpoint(path)``, ``.label`` and ``.host_key``.
    * ``token = cli.token_for(target)`` returns the token saved for that host, or obtains a new identity
      from that server (``POST /v1/identity``), saves it and says so on stderr. ``cli.saved_token(target)``
      only looks. Tokens are keyed by host:port, so a token only ever goes to the server that issued it.
    * ``http.request("POST", target.endpoint("/v1/..."), token=token, json=payload)`` then
      ``http.raise_for_status(response, target)``: every failure is a one-line :class:`CliError` (an
      unreachable server names the URL and suggests ``spacetime start``; a 401 suggests ``spacetime
      logout -s SERVER``).
    * Read-only commands (start, logs, sql, call, subscribe, ...) use ``cli.read_config()``: no lock.
      Commands that change the config use ``with cli.edit_config() as config:`` around the change only --
      resolve, prompt and do network calls before the block, print after it -- so the lock is held for
      milliseconds and released on every exit path.
    * Raise :class:`~spacetimedb.cli.errors.CliError(message, hint=...)` for failures; never print a
      traceback. Usage errors from click exit 2, other errors 1, Ctrl-C 130, SIGTERM 143.

Hidden test hooks (environment, seconds): ``SPACETIME_TEST_HOLD_LOCK_SECONDS`` sleeps while holding the
lock, ``SPACETIME_TEST_PAUSE_BEFORE_RENAME_SECONDS`` sleeps between writing the temp file and renaming it.
``SPACETIME_TRACEBACK=1`` shows the traceback of an internal error.
"""
