"""`spacetime publish`: create, update with a migration plan, refuse what needs a manual migration, -c."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .conftest import NOTES, User, assert_one_line_error, hint_of

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

IDENTITY = re.compile(r"identity: ([0-9a-f]{64})$")
NEW_TABLE = """

@table(public=True)
class Tag:
    name: Annotated[str, PrimaryKey]
"""


def variant(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def note_texts(user: User, database: str) -> list[str]:
    result = user("sql", database, "SELECT text FROM note", "--json")
    assert result.code == 0, result
    return [row[0] for row in json.loads(result.out)[0]["rows"]]


def test_publish_creates_and_prints_name_and_identity(alice: User, db_name: str):
    result = alice("publish", db_name, "-p", str(NOTES))
    assert result.code == 0, result
    last = result.out.splitlines()[-1]
    assert last.startswith(f"Created new database with name: {db_name}, identity: ")
    identity = IDENTITY.search(last)
    assert identity is not None
    assert "saved a new identity" in result.err  # the first command obtained alice's identity
    by_identity = alice("sql", identity.group(1), "SELECT * FROM note")
    assert by_identity.code == 0, by_identity  # the printed identity names the same database


def test_republishing_the_same_module_needs_no_confirmation(alice: User, notes_db: str):
    result = alice("publish", notes_db, "-p", str(NOTES))  # stdin is not a terminal, and no -y
    assert result.code == 0, result
    assert "No changes." in result.out
    assert result.out.splitlines()[-1].startswith(f"Updated database with name: {notes_db}")


def test_an_update_that_keeps_clients_applies_without_asking(alice: User, notes_db: str, tmp_path: Path):
    """Upstream asks only when the update breaks clients (crates/cli/src/subcommands/publish.rs,
    apply_pre_publish_if_needed): adding a table applies at once."""
    alice("call", notes_db, "add_note", '"kept"', "1")
    with_tag = variant(tmp_path, "notes_v2.py", NOTES.read_text() + NEW_TABLE)
    applied = alice("publish", notes_db, "-p", str(with_tag))  # stdin gives nothing, and no -y
    assert applied.code == 0, applied
    assert "Database Migration Plan" in applied.out and "Created table tag" in applied.out
    assert applied.out.splitlines()[-1].startswith(f"Updated database with name: {notes_db}")
    assert alice("describe", notes_db, "table", "tag").code == 0
    assert note_texts(alice, notes_db) == ["kept"]  # an automatic migration keeps the data


def test_an_update_that_breaks_clients_asks_unless_break_clients(alice: User, notes_db: str, tmp_path: Path):
    """Adding a column disconnects every client: upstream's "The above changes will BREAK existing clients"
    question, which --break-clients or --yes=break-clients answers (smoketest cluster/cli/publish.rs,
    cli_cannot_publish_automigration_change_without_yes_break_clients)."""
    source = NOTES.read_text().replace("    score: i32\n", "    score: i32\n    stars: i32 = 0\n", 1)
    with_column = variant(tmp_path, "notes_v4.py", source)
    refused = alice("publish", notes_db, "-p", str(with_column))
    assert "The above changes will BREAK existing clients. Do you want to proceed?" in refused.out
    assert_one_line_error(refused, f"not updating '{notes_db}' without confirmation")
    assert "--break-clients" in hint_of(refused)
    assert alice("sql", notes_db, "SELECT stars FROM note").code != 0  # nothing changed
    answered = alice("publish", notes_db, "-p", str(with_column), "--yes=break-clients")
    assert answered.code == 0, answered
    assert alice("sql", notes_db, "SELECT stars FROM note").code == 0


def _http(url: str, method: str, token: str | None = None, body: bytes | None = None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _program(path: Path) -> bytes:
    from spacetimedb.module import package_program

    return package_program(path)[0]


def test_the_server_refuses_an_update_that_breaks_clients_unless_the_request_allows_it(
    alice: User, db_name: str, tmp_path: Path
):
    """Upstream's server enforces the rule, not only its CLI (crates/client-api/src/routes/database.rs,
    publish and schema_migration_policy; crates/schema/src/auto_migrate.rs, MigrationPolicy::permits_plan):
    an update that disconnects the clients needs ``policy=BreakClients`` with the pre-publish token of that
    very update, and each refusal is a 400 with upstream's text."""
    status, identity = _http(f"{alice.url}/v1/identity", "POST")
    assert status == 200, identity
    token = json.loads(identity)["token"]
    database = f"{alice.url}/v1/database/{db_name}"
    assert _http(database, "PUT", token, _program(NOTES))[0] == 200
    with_tag = _program(variant(tmp_path, "notes_tag.py", NOTES.read_text() + NEW_TABLE))
    status, reply = _http(database, "PUT", token, with_tag)
    assert status == 200, reply  # an update that keeps the clients needs no policy
    source = NOTES.read_text() + NEW_TABLE
    breaking = _program(
        variant(
            tmp_path,
            "notes_col.py",
            source.replace("    score: i32\n", "    score: i32\n    stars: i32 = 0\n", 1),
        )
    )

    refused = "Failed to create or update the database: "
    assert _http(database, "PUT", token, breaking) == (
        400,
        refused + "Migration plan contains a client-breaking change which is disallowed under current policy",
    )
    assert _http(f"{database}?policy=BreakClients", "PUT", token, breaking) == (
        400,
        "Migration policy is set to `BreakClients`, but no migration token was provided.",
    )
    status, plan = _http(f"{database}/pre_publish", "POST", token, breaking)
    assert status == 200, plan
    auto = json.loads(plan)["AutoMigrate"]
    assert auto["break_clients"] is True
    wrong = "0x" + "0" * 64
    assert _http(f"{database}?policy=BreakClients&token={wrong}", "PUT", token, breaking) == (
        400,
        refused + "Token provided is invalid or does not match expected hash",
    )
    assert _http(f"{database}?policy=Sometimes", "PUT", token, breaking)[0] == 400
    # every refusal changed nothing
    assert _http(f"{database}/sql", "POST", token, b"SELECT stars FROM note")[0] == 400
    status, reply = _http(f"{database}?policy=BreakClients&token={auto['token']}", "PUT", token, breaking)
    assert status == 200, reply
    assert json.loads(reply)["Success"]["op"] == "updated"


def test_a_change_needing_a_manual_migration_is_refused_unless_delete_data(
    alice: User, notes_db: str, tmp_path: Path
):
    alice("call", notes_db, "add_note", '"old"', "1")
    retyped = variant(tmp_path, "notes_v3.py", NOTES.read_text().replace("score: i32", "score: str"))
    retyped_text = retyped.read_text().replace("score: i32) -> None", "score: str) -> None")
    retyped.write_text(retyped_text)

    refused = alice("publish", notes_db, "-p", str(retyped), "-y")
    assert_one_line_error(refused, "needs a manual migration")
    assert "This update cannot be applied automatically:" in refused.out
    assert "score" in refused.out
    assert "-c/--delete-data" in hint_of(refused)
    assert note_texts(alice, notes_db) == ["old"]

    on_conflict = alice("publish", notes_db, "-p", str(retyped), "--delete-data=on-conflict")
    assert "Proceeding with database clear due to --delete-data=on-conflict." in on_conflict.out
    assert_one_line_error(on_conflict, f"not deleting the data of '{notes_db}' without confirmation")

    not_confirmed = alice("publish", notes_db, "-p", str(retyped), "-c")  # deleting data is always confirmed
    assert_one_line_error(not_confirmed, f"not deleting the data of '{notes_db}' without confirmation")
    assert "DESTROY" in not_confirmed.out

    cleared = alice("publish", notes_db, "-p", str(retyped), "-c", "-y")
    assert cleared.code == 0, cleared
    assert note_texts(alice, notes_db) == []
    assert alice("call", notes_db, "add_note", '"new"', '"a string now"').code == 0


def test_an_invalid_module_is_reported_before_any_upload(alice: User, tmp_path: Path, refused_url: str):
    broken = variant(tmp_path, "broken.py", NOTES.read_text().replace("score: i32\n", "score: complex\n", 1))
    # The server is unreachable: the error can only come from validating the module here.
    result = User(alice.config_dir, refused_url)("publish", "anything", "-p", str(broken))
    error = assert_one_line_error(result, "cannot publish")
    assert "Note" in error and "score" in error and "complex" in error
    assert "nothing was uploaded" in hint_of(result)

    syntax = variant(tmp_path, "syntax.py", "def broken(:\n")
    result = User(alice.config_dir, refused_url)("publish", "anything", "-p", str(syntax))
    assert "syntax.py:1" in assert_one_line_error(result, "cannot publish")


def test_publish_without_a_name_creates_a_database_known_by_identity(alice: User):
    result = alice("publish", "-p", str(NOTES))
    assert result.code == 0, result
    match = re.fullmatch(r"Created new database with identity: ([0-9a-f]{64})", result.out.splitlines()[-1])
    assert match is not None, result.out
    assert alice("call", match.group(1), "add_note", '"anonymous db"', "3").code == 0


def test_publish_finds_module_py_in_the_current_directory(alice: User, db_name: str, tmp_path: Path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "module.py").write_text(NOTES.read_text())
    result = alice("publish", db_name, cwd=project)
    assert result.code == 0, result
    assert result.out.startswith("Publishing module.py")
    nothing = alice("publish", db_name, cwd=tmp_path)
    assert "-p/--module-path" in hint_of(nothing)
    assert_one_line_error(nothing, "no module to publish")


def test_only_the_owner_may_update(alice: User, bob: User, notes_db: str):
    result = bob("publish", notes_db, "-p", str(NOTES), "-y")
    assert_one_line_error(result, f"not authorised on database '{notes_db}'")


def test_publish_argument_errors(alice: User, tmp_path: Path):
    assert_one_line_error(alice("publish", "Not_A_Name", "-p", str(NOTES)), "is not a database name", code=2)
    missing = alice("publish", "fine-name", "-p", str(tmp_path / "missing.py"))
    assert_one_line_error(missing, "does not exist")
    not_python = variant(tmp_path, "module.txt", "x = 1\n")
    assert_one_line_error(alice("publish", "fine-name", "-p", str(not_python)), "must be a .py file")


def test_the_reasons_for_a_manual_migration_are_separated(alice: User, notes_db: str, tmp_path: Path):
    text = (
        NOTES.read_text().replace("score: i32", "score: str").replace("    value: str\n", "    value: i32\n")
    )
    refused = alice("publish", notes_db, "-p", str(variant(tmp_path, "notes_two.py", text)), "-y")
    error = assert_one_line_error(refused, "needs a manual migration")
    reasons = error.split("needs a manual migration: ", 1)[1].split("; ")
    assert len(reasons) == 2, error
    assert any("note" in r and "score" in r for r in reasons) and any("secret" in r for r in reasons), error


def test_publish_reads_spacetime_json(alice: User, db_name: str, tmp_path: Path):
    """Upstream's publish takes its target from spacetime.json (crates/cli/src/subcommands/publish.rs,
    build_publish_schema): the database, the module path (relative to the file), `break-clients`."""
    project = tmp_path / "project"
    (project / "server").mkdir(parents=True)
    module = project / "server" / "module.py"
    module.write_text(NOTES.read_text())
    config = project / "spacetime.json"
    config.write_text(json.dumps({"database": db_name, "module-path": "./server"}))

    created = alice("publish", cwd=project)
    assert created.code == 0, created
    assert f"Using configuration from {config}" in created.out
    assert f"Publishing module {module} to database '{db_name}'" in created.out
    assert created.out.splitlines()[-1].startswith(f"Created new database with name: {db_name}")

    module.write_text(
        NOTES.read_text().replace("    score: i32\n", "    score: i32\n    stars: i32 = 0\n", 1)
    )
    asked = alice("publish", cwd=project)
    assert_one_line_error(asked, f"not updating '{db_name}' without confirmation")
    config.write_text(json.dumps({"database": db_name, "module-path": "./server", "break-clients": True}))
    assert alice("publish", cwd=project).code == 0  # the file answers the question
    assert alice("sql", db_name, "SELECT stars FROM note").code == 0

    ignored = alice("publish", "--no-config", cwd=project)
    assert_one_line_error(ignored, "no module to publish")
    config.write_text(json.dumps({"database": db_name, "colour": "blue"}))
    unknown = alice("publish", cwd=project)
    assert_one_line_error(
        unknown, "Config key 'colour' is not supported in the config file. Available keys: "
    )
