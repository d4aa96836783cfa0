"""Python versions of upstream's smoketest modules (crates/smoketests/modules/), shared by several port files,
and the project upstream's tests make with ``spacetime init``."""

from __future__ import annotations

from pathlib import Path

from tests.cli_e2e.conftest import User

# upstream's "noop" and "modules-basic": any module will do
NOOP = """
    from spacetimedb import ReducerContext, reducer


    @reducer
    def noop(ctx: ReducerContext) -> None:
        pass
"""

# upstream's "new-user-flow" and "describe"
PERSON = """
    from spacetimedb import ReducerContext, log, reducer, table


    @table
    class Person:
        name: str


    @reducer
    def add(ctx: ReducerContext, name: str) -> None:
        ctx.db.person.insert(Person(name=name))


    @reducer
    def say_hello(ctx: ReducerContext) -> None:
        for person in ctx.db.person.iter():
            log.info(f"Hello, {person.name}!")
        log.info("Hello, World!")
"""

# upstream's "client-connection-reject" and "client-connection-disconnect-panic": all_u8s filled at init, and
# lifecycle reducers given as arguments
ALL_U8S = """
    from spacetimedb import ReducerContext, reducer, table, u8


    @table(public=True)
    class AllU8s:
        number: u8


    @reducer(lifecycle="init")
    def init(ctx: ReducerContext) -> None:
        for number in range(256):
            ctx.db.all_u8s.insert(AllU8s(number=number))


    @reducer(lifecycle="client_connected")
    def identity_connected(ctx: ReducerContext) -> None:
        {connected}


    @reducer(lifecycle="client_disconnected")
    def identity_disconnected(ctx: ReducerContext) -> None:
        raise RuntimeError("{disconnected}")
"""


def init_project(user: User, project_path: Path) -> Path:
    """``spacetime init --non-interactive --lang python --project-path PATH test-project`` (upstream's smoketests
    use ``--lang rust``); returns the module's directory, ``PATH/spacetimedb``."""
    created = user(
        "init",
        "--non-interactive",
        "--lang",
        "python",
        "--project-path",
        str(project_path),
        "test-project",
        server=False,
    )
    assert created.code == 0, created
    return project_path / "spacetimedb"
