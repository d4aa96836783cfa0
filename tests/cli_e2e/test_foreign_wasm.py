"""WASM modules built by SpacetimeDB's own toolchains, published with `--bin-path` and run by a real server's
sandboxed worker: upstream's prebuilt `upgrade_old_module_v1.wasm`, and the keynote transfer module in Rust."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import ServerProcess, start_server
from ..host.foreign.test_wasm_hostile import hostile_program
from .conftest import User, assert_one_line_error, v10_section

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
UPSTREAM = FIXTURES / "upgrade_old_module_v1.wasm"
KEYNOTE = FIXTURES / "keynote.wasm"


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """This file's server: a short reducer budget, so that a runaway module is stopped quickly."""
    proc = start_server(tmp_path_factory.mktemp("server") / "data", extra_args=["--reducer-budget", "1"])
    try:
        yield proc
    finally:
        proc.shut_down()


def sql(user: User, database: str, query: str) -> list[list[object]]:
    result = user("sql", database, query, "--json")
    assert result.code == 0, result
    return json.loads(result.out)[0]["rows"]


def test_upstream_module_then_the_rust_keynote_module_as_an_update(alice: User, db_name: str, tmp_path: Path):
    result = alice("publish", db_name, "--bin-path", str(UPSTREAM))
    assert result.code == 0, result
    assert alice("call", db_name, "noop").code == 0
    described = alice("describe", db_name, "--json")
    assert described.code == 0, described
    assert [r["source_name"] for r in v10_section(json.loads(described.out), "Reducers")] == ["noop"]
    assert sql(alice, db_name, "SELECT program_kind FROM st_module") == [[0]]  # WASM, as upstream records it

    update = alice("publish", db_name, "--bin-path", str(KEYNOTE), "-y")
    assert update.code == 0, update
    assert alice("call", db_name, "seed", "3", "100").code == 0
    assert alice("call", db_name, "transfer", "0", "2", "40").code == 0
    failed = alice("call", db_name, "transfer", "1", "1", "5")
    assert failed.code == 1
    assert "same_account" in assert_one_line_error(failed)
    assert sorted(sql(alice, db_name, "SELECT id, balance FROM accounts")) == [[0, 60], [1, 100], [2, 140]]

    bindings = tmp_path / "module_bindings"
    generated = alice("generate", db_name, "--lang", "python", "--out-dir", str(bindings))
    assert generated.code == 0, generated
    code = "\n".join(p.read_text() for p in sorted(bindings.rglob("*.py")))
    assert "class Account" in code and "def transfer" in code


def test_bin_path_must_be_a_built_program(alice: User, db_name: str, tmp_path: Path):
    text = tmp_path / "module.py"
    text.write_text("x = 1\n")
    assert_one_line_error(alice("publish", db_name, "--bin-path", str(text)), ".wasm module or a .js bundle")
    fake = tmp_path / "fake.wasm"
    fake.write_bytes(b"not wasm")
    assert_one_line_error(alice("publish", db_name, "--bin-path", str(fake)), "not a WebAssembly module")


def test_hostile_wasm_fails_alone_in_its_sandboxed_worker(alice: User, db_name: str, tmp_path: Path):
    hostile, neighbour = f"{db_name}-hostile", f"{db_name}-neighbour"
    program = tmp_path / "hostile.wasm"
    program.write_bytes(hostile_program())
    assert alice("publish", hostile, "--bin-path", str(program)).code == 0
    assert alice("publish", neighbour, "--bin-path", str(KEYNOTE)).code == 0
    assert alice("call", neighbour, "seed", "2", "10").code == 0
    expected = {
        "spin": "time budget",
        "grow": "unreachable",
        "bad_pointer": "outside the module's memory",
        "bad_length": "outside the module's memory",
    }
    for reducer, message in expected.items():
        failed = alice("call", hostile, reducer)
        assert failed.code == 1, (reducer, failed)
        assert message in assert_one_line_error(failed), reducer
        assert alice("call", hostile, "ok").code == 0, reducer
        assert alice("call", neighbour, "transfer", "0", "1", "1").code == 0, reducer
    assert sorted(sql(alice, neighbour, "SELECT id, balance FROM accounts")) == [[0, 6], [1, 14]]
