"""`spacetime list`, `spacetime delete` and `spacetime init` (then publishing the new project)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import User, assert_one_line_error, hint_of

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]


def owned(user: User) -> dict[str, list[str]]:
    result = user("list", "--json")
    assert result.code == 0, result
    payload = json.loads(result.out)
    return {db["identity"]: db["names"] for db in payload["databases"]}


def test_list_shows_only_your_databases(alice: User, bob: User, db_name: str):
    assert owned(alice) == {}
    first = alice("list")
    assert re.fullmatch(r"No databases found for [0-9a-f]{64}\.\n", first.out), first
    published = alice.publish(db_name)
    identity = published.out.split("identity: ")[-1].strip()
    assert owned(alice) == {identity: [db_name]}
    table = alice("list").out.splitlines()
    assert table[0].startswith("Associated databases for identity ")
    assert table[2].split() == ["Database", "Name(s)", "|", "Identity"]
    assert table[4].split() == [db_name, "|", identity]
    assert owned(bob) == {}


def test_delete_asks_then_deletes(alice: User, notes_db: str):
    """As upstream's delete.rs / util.rs y_or_n: the question is read from standard input, terminal or not; only
    y or yes confirms; --yes says that it skips the question."""
    refused = alice("delete", notes_db)  # nothing to read on stdin: no silent deletion
    assert refused.out.startswith(f"Are you sure you want to delete database {notes_db} (")
    assert "This action cannot be undone. [y/N]" in refused.out
    # upstream aborts with exit status 0 (smoketest cluster/delete_database.rs)
    assert refused.code == 0 and refused.out.splitlines()[-1] == "Aborting", refused
    assert "-y/--yes" in hint_of(refused)
    declined = alice("delete", notes_db, input="n\n")
    assert declined.code == 0 and declined.out.endswith("Aborting\n") and declined.err == "", declined
    assert len(owned(alice)) == 1
    assert alice("delete", notes_db, input="yes\n").code == 0
    assert owned(alice) == {}
    alice.publish(notes_db)
    deleted = alice("delete", notes_db, "-y")
    assert deleted.code == 0, deleted
    pattern = rf"Skipping confirmation due to --yes\nDeleted database {notes_db} \([0-9a-f]{{64}}\)\n"
    assert re.fullmatch(pattern, deleted.out), deleted.out
    assert owned(alice) == {}
    assert_one_line_error(alice("sql", notes_db, "SELECT * FROM note"), "No such database")
    again = alice("delete", notes_db, "-y")
    assert_one_line_error(again, f"No such database '{notes_db}' on {alice.url}")


def test_only_the_owner_may_delete(alice: User, bob: User, notes_db: str):
    result = bob("delete", notes_db, "-y")
    error = assert_one_line_error(result, f"not authorised on database '{notes_db}'")
    assert "is not the owner" in error
    assert len(owned(alice)) == 1


def test_init_creates_a_project_that_publishes(alice: User, tmp_path: Path):
    project = tmp_path / "Hello World"
    created = alice("init", "--lang", "python", str(project), server=False)
    assert created.code == 0, created
    assert sorted(p.name for p in project.iterdir()) == [
        ".gitignore",
        "README.md",
        "module.py",
        "test_module.py",
    ]
    assert "spacetime publish hello-world" in created.out
    assert "{{" not in (project / "module.py").read_text() + (project / "README.md").read_text()

    published = alice("publish", "hello-world", cwd=project)  # finds module.py by itself
    assert published.code == 0, published
    assert alice("call", "hello-world", "add", '"Alice"').code == 0
    assert alice("call", "hello-world", "say_hello").code == 0
    rows = alice("sql", "hello-world", "SELECT name FROM person")
    assert rows.out.splitlines()[2].strip() == '"Alice"'
    assert "Hello, Alice!" in alice("logs", "hello-world").out
    empty_name = alice("call", "hello-world", "add", '"  "')
    assert_one_line_error(empty_name, "a name must not be empty")

    # the project's own tests pass
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(project / "test_module.py")],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "3 passed" in tests.stdout


def test_init_refuses_a_non_empty_directory(alice: User, tmp_path: Path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    result = alice("init", "--lang", "python", str(tmp_path / "taken"), server=False)
    assert_one_line_error(result, "is not empty")
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in (tmp_path / "taken").iterdir()) == ["notes.txt"]
    (tmp_path / "file").write_text("")
    assert_one_line_error(alice("init", str(tmp_path / "file"), server=False), "is not a directory")
    assert_one_line_error(alice("init", "--lang", "rust", str(tmp_path / "new"), server=False), "", code=2)


@pytest.mark.parametrize("name", ["x", "a-rather-long-project-name-for-a-database"])
def test_init_readme_comments_line_up_whatever_the_name(alice: User, tmp_path: Path, name: str):
    project = tmp_path / name
    assert alice("init", "--lang", "python", str(project), server=False).code == 0
    readme = (project / "README.md").read_text()
    commented = [line for line in readme.splitlines() if line.startswith("spacetime ") and "  # " in line]
    assert len(commented) >= 3, readme
    assert len({line.index("# ") for line in commented}) == 1, readme
    assert all(line.split("# ")[0].endswith("  ") for line in commented)
