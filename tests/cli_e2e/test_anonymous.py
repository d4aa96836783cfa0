"""`--anonymous` on call, describe, sql, subscribe and logs: the command acts as a new identity obtained for it
alone, as upstream's flag does (crates/cli: "Perform this action with an anonymous identity"); the saved
identity is neither used nor changed, and none is saved."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import User, assert_one_line_error

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]


def config_files(user: User) -> dict[str, bytes]:
    root = user.config_dir
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.suffix != ".lock"
    }


def test_the_owner_acting_anonymously_is_a_stranger(alice: User, notes_db: str):
    saved = config_files(alice)
    assert alice("sql", notes_db, "SELECT * FROM secret").code == 0  # the owner may read a private table
    refused = alice("sql", notes_db, "SELECT * FROM secret", "--anonymous")
    assert refused.code != 0 and "secret" in refused.err.lower(), refused
    assert alice("logs", notes_db).code == 0
    assert_one_line_error(alice("logs", notes_db, "--anonymous"))
    subscribed = alice("subscribe", notes_db, "SELECT * FROM secret", "--anonymous", "-n", "1", timeout=60)
    assert subscribed.code != 0, subscribed
    assert alice("call", notes_db, "add_note", "from nobody", "1", "--anonymous").code == 0
    described = alice("describe", notes_db, "--anonymous", "--json")
    assert described.code == 0 and "add_note" in described.out
    assert config_files(alice) == saved  # the saved identity is untouched


def test_an_anonymous_command_saves_no_identity(tmp_path: Path, alice: User, notes_db: str):
    newcomer = User(tmp_path / "newcomer", alice.url)
    assert newcomer("call", notes_db, "add_note", "hi", "2", "--anonymous").code == 0
    saved = config_files(newcomer) if newcomer.config_dir.exists() else {}
    assert not [name for name, content in saved.items() if b"token" in content], saved
    assert newcomer("sql", notes_db, "SELECT text FROM note", "--anonymous").code == 0
