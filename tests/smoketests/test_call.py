"""Port of upstream's cluster/call.rs: calling reducers and procedures, and the "No such reducer OR procedure"
message with its similar-name suggestion or its list of what exists (crates/cli/src/subcommands/call.rs)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli_e2e.conftest import User

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

NOT_APPLICABLE: dict[str, str] = {}

CALL_REDUCER_PROCEDURE = """
    from spacetimedb import ProcedureContext, ReducerContext, log, procedure, reducer, table


    @table
    class Person:
        name: str


    @reducer
    def say_hello(ctx: ReducerContext) -> None:
        log.info("Hello, World!")


    @procedure
    def return_person(ctx: ProcedureContext) -> Person:
        return Person(name="World")
"""

IDENTITY_ARGUMENT = """
    from spacetimedb import Identity, ProcedureContext, ReducerContext, log, procedure, reducer, table


    @table
    class Person:
        name: str


    @reducer
    def say_my_identity(ctx: ReducerContext, identity: Identity) -> None:
        log.info(f"Hello, {identity}!")


    @procedure
    def return_my_identity(ctx: ProcedureContext, identity: Identity) -> Identity:
        return identity
"""

CALL_EMPTY = """
    from spacetimedb import table


    @table
    class Person:
        name: str
"""

# eleven reducers and eleven procedures, one more of each than the message lists
CALL_MANY = "\n".join(
    [
        "from spacetimedb import ProcedureContext, ReducerContext, log, procedure, reducer",
        *(
            f"@reducer\ndef say_reducer_{n}(ctx: ReducerContext) -> None:\n    log.info('reducer {n}')\n\n"
            f"@procedure\ndef say_procedure_{n}(ctx: ProcedureContext) -> None:\n    log.info('procedure {n}')\n"
            for n in range(11)
        ),
    ]
)


def published(alice: User, db_name: str, python_module: Callable[[str], Path], source: str) -> str:
    """Publish ``source`` as ``db_name`` and return the database's identity."""
    result = alice.publish(db_name, python_module(source))
    return result.out.strip().rsplit("identity: ", 1)[1]


def no_such(identity: str, name: str) -> str:
    return (
        f"error: No such reducer OR procedure `{name}` for database `{identity}` resolving to identity "
        f"`{identity}`."
    )


def test_call_reducer_procedure(alice: User, db_name: str, python_module: Callable[[str], Path]):
    published(alice, db_name, python_module, CALL_REDUCER_PROCEDURE)
    said = alice("call", db_name, "say_hello")
    assert said.code == 0 and said.out.strip() == "", said
    person = alice("call", db_name, "return_person")
    assert person.code == 0 and person.out.strip() == '["World"]', person


def test_call_reducer_procedure_with_identity_argument(
    alice: User, db_name: str, python_module: Callable[[str], Path]
):
    identity = published(alice, db_name, python_module, IDENTITY_ARGUMENT)
    tuple_encoding = f'["0x{identity}"]'
    for argument in (identity, f"0x{identity}", tuple_encoding, f'{{"__identity__": "0x{identity}"}}'):
        returned = alice("call", identity, "return_my_identity", argument)
        assert returned.code == 0 and returned.out.strip() == tuple_encoding, (argument, returned)
        assert alice("call", identity, "say_my_identity", argument).code == 0, argument
    logs = alice("logs", identity, "-n", "100").out
    assert logs.count(f"Hello, {identity}!") == 4, logs


def test_call_errors(alice: User, db_name: str, python_module: Callable[[str], Path]):
    identity = published(alice, db_name, python_module, CALL_REDUCER_PROCEDURE)
    for name in ("non_existent_reducer", "non_existent_procedure"):
        result = alice("call", identity, name)
        assert result.code != 0
        assert result.err_lines[:7] == [
            no_such(identity, name),
            "",
            "Here are some existing reducers:",
            "- say_hello",
            "",
            "Here are some existing procedures:",
            "- return_person",
        ], result.err
    for name, kind, similar in (
        ("say_hell", "reducer", "say_hello"),
        ("return_perso", "procedure", "return_person"),
    ):
        result = alice("call", identity, name)
        assert result.code != 0
        assert result.err_lines[:3] == [
            no_such(identity, name),
            "",
            f"A {kind} with a similar name exists: `{similar}`",
        ], result.err


def test_call_empty_errors(alice: User, db_name: str, python_module: Callable[[str], Path]):
    identity = published(alice, db_name, python_module, CALL_EMPTY)
    result = alice("call", identity, "non_existent")
    assert result.code != 0
    assert result.err_lines[:5] == [
        no_such(identity, "non_existent"),
        "",
        "The database has no reducers.",
        "",
        "The database has no procedures.",
    ], result.err


def test_call_many_errors(alice: User, db_name: str, python_module: Callable[[str], Path]):
    identity = published(alice, db_name, python_module, CALL_MANY)
    result = alice("call", identity, "non_existent")
    assert result.code != 0
    expected = [no_such(identity, "non_existent")]
    for kind in ("reducer", "procedure"):
        expected += ["", f"Here are some existing {kind}s:"]
        expected += [f"- say_{kind}_{n}" for n in range(10)]
        expected.append(f"... (1 {kind} not shown)")
    assert result.err_lines[: len(expected)] == expected, result.err
