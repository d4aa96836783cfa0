"""``python -m spacetimedb.server``: run a server in the foreground (``spacetime start`` is the friendly way).

Prints ``listening on http://HOST:PORT`` (and the data directory and how modules are isolated) once it accepts
connections, so that scripts and tests can start it on port 0 and read the port it got.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .app import Server, run
from .config import DEFAULT_LISTEN_ADDR, configure_logging, parse_listen_addr, resolve
from .isolation import IsolationRefused
from .tunables import FLAG, TUNABLES, server_options


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m spacetimedb.server", description=__doc__)
    parser.add_argument("--config", type=Path, default=None, help="A config file (TOML); flags win over it.")
    parser.add_argument("--listen-addr", default=None, help=f"HOST:PORT (default {DEFAULT_LISTEN_ADDR})")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--in-memory", action="store_true")
    for tunable in TUNABLES:
        if tunable.kind == FLAG:
            parser.add_argument(tunable.flag, action="store_true", help=tunable.help)
        elif tunable.repeatable:
            parser.add_argument(
                tunable.flag, action="append", metavar=tunable.shown_metavar, help=tunable.help
            )
        else:
            parser.add_argument(tunable.flag, default=None, metavar=tunable.shown_metavar, help=tunable.help)
    args = parser.parse_args(argv)
    flags = {name: getattr(args, name) for name in ("listen_addr", "data_dir", "in_memory")}
    flags.update({t.name: getattr(args, t.name) for t in TUNABLES})
    try:
        settings = resolve(flags, args.config)
        options = server_options(settings.tunables)
        host, port = parse_listen_addr(settings.listen_addr)
    except ValueError as exc:
        parser.error(str(exc))
    if settings.data_dir is None and not settings.in_memory:
        parser.error("give --data-dir DIR or --in-memory")
    configure_logging(options.log_level, options.log_format)

    def ready(server: Server) -> None:
        bound_host, bound_port = server.bound or (host, port)
        where = "memory" if server.data_dir is None else str(server.data_dir)
        if server.pg is not None and server.pg.bound is not None:
            pg_host, pg_port = server.pg.bound
            print(f"postgres on {pg_host}:{pg_port}", flush=True)
        print(f"listening on http://{bound_host}:{bound_port}", flush=True)
        print(f"data in {where}", flush=True)
        if server.connections is not None:
            print(server.connections.limits.summary, flush=True)
        if server.auth.oidc.summary:
            print(server.auth.oidc.summary, flush=True)
        if server.isolation is not None:
            print(server.isolation.summary, flush=True)
            if server.isolation.warning:
                print(server.isolation.warning, file=sys.stderr, flush=True)

    try:
        run(None if settings.in_memory else settings.data_dir, host, port, options, on_ready=ready)
    except IsolationRefused as refused:
        print(f"error: {refused}", file=sys.stderr, flush=True)
        sys.exit(2)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
