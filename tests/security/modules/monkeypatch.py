"""A hostile module that rewrites the server's code: in memory (its worker imports the server's modules and
replaces their authorization functions) and on disk (it tries to add files to, or open for writing, the
installed project and its site-packages, which every server process imports from).
"""

import os
import sys
from typing import Annotated

from spacetimedb import AutoInc, PrimaryKey, ReducerContext, reducer, table, u64


@table(public=True)
class Loot:
    id: Annotated[u64, PrimaryKey, AutoInc]
    what: str
    data: str


def keep(ctx: ReducerContext, what: str, data: str) -> None:
    ctx.db.loot.insert(Loot(id=0, what=what, data=data))


def _anyone(*args, **kwargs):
    """Stands in for every check: nobody is refused anything."""
    return None


def patch_everything() -> list[str]:
    """Replace the authorization and lifecycle functions of the server, controller and host code loaded in
    this process; the names of what now is ``_anyone``."""
    import mimetypes

    mimetypes.knownfiles = []  # aiohttp reads /etc/mime.types on import, which the sandbox refuses
    from spacetimedb import controller
    from spacetimedb.controller import supervisor
    from spacetimedb.host import clients
    from spacetimedb.server import auth, routes

    patched = []
    for owner, name in [
        (routes, "_require_owner"),
        (routes, "require_caller"),
        (routes, "claims_of"),
        (auth.TokenAuthority, "validate"),
        (controller.HostController, "delete"),
        (supervisor.HostController, "publish"),
        # (not the handlers of HTTP calls and SQL: the test still has to talk to this database)
        (clients.ClientHub, "connect"),
        (clients.ClientHub, "stats"),
    ]:
        setattr(owner, name, _anyone)
        if getattr(owner, name) is _anyone:
            patched.append(f"{owner.__name__}.{name}")
    return patched


# patched at load time too, before any reducer runs
PATCHED_AT_LOAD = patch_everything()


@reducer
def report_patches(ctx: ReducerContext) -> None:
    keep(ctx, "patched at load", ",".join(PATCHED_AT_LOAD))
    keep(ctx, "patched in a reducer", ",".join(patch_everything()))


@reducer
def write_server_code(ctx: ReducerContext, relative_name: str) -> None:
    """Create ``relative_name`` next to the ``spacetimedb`` package and in site-packages (a .pth file there runs
    in every interpreter of the installation), and open an existing server module for writing (nothing is
    written: opening is the test)."""
    import spacetimedb.server.routes as routes

    server_package = os.path.dirname(os.path.abspath(routes.__file__))
    package_parent = os.path.dirname(os.path.dirname(server_package))
    site_packages = next(path for path in sys.path if path.endswith("site-packages"))
    for directory in (package_parent, server_package, site_packages):
        path = os.path.join(directory, relative_name)
        try:
            with open(path, "x") as file:
                file.write("# written by a module\n")
            keep(ctx, "created", path)
        except OSError as exc:
            keep(ctx, "refused", f"{path}: {exc}")
    try:
        with open(routes.__file__, "r+b"):
            keep(ctx, "opened for writing", routes.__file__)
    except OSError as exc:
        keep(ctx, "refused", f"{routes.__file__}: {exc}")
