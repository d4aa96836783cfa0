"""spacetime.json, as upstream's CLI reads it (crates/cli/src/spacetime_config.rs): found upwards, overlaid by
local and environment files, children inheriting their parent's keys, ``dev`` strict."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from spacetimedb.cli.errors import CliError
from spacetimedb.cli.project_config import check_keys, load_project_config, select_targets


def write(directory: Path, name: str, value: Any) -> None:
    (directory / name).write_text(value if isinstance(value, str) else json.dumps(value))


def test_found_in_a_parent_directory_and_overlaid_by_local_then_environment_files(tmp_path: Path) -> None:
    write(tmp_path, "spacetime.json", {"database": "base", "server": "local", "module-path": "./server"})
    write(tmp_path, "spacetime.local.json", {"database": "mine"})
    write(tmp_path, "spacetime.dev.json", {"server": "maincloud"})
    write(tmp_path, "spacetime.dev.local.json", {"server": "staging"})
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)

    config = load_project_config(nested)
    assert config is not None and config.directory == tmp_path
    assert [f.name for f in config.files] == ["spacetime.json", "spacetime.local.json"]
    (target,) = config.targets
    assert target.fields == {"database": "mine", "server": "local", "module_path": "./server"}
    assert config.path(target.fields["module_path"], "module_path") == tmp_path / "server"

    with_env = load_project_config(nested, "dev")
    assert with_env is not None and with_env.targets[0].fields["server"] == "staging"
    assert len(with_env.files) == 4
    assert load_project_config(tmp_path.parent / "elsewhere-that-does-not-exist-either") is None


def test_children_inherit_their_parents_keys_but_only_one_module_source(tmp_path: Path) -> None:
    write(
        tmp_path,
        "spacetime.json",
        {
            "server": "local",
            "module-path": "./server",
            "generate": [{"language": "typescript", "out-dir": "./bindings"}],
            "children": [{"database": "region-1"}, {"database": "region-2", "bin-path": "./built.wasm"}],
        },
    )
    write(tmp_path, "spacetime.local.json", {"children": [{"database": "region-1-local"}]})
    config = load_project_config(tmp_path)
    assert config is not None
    root, first, second = config.targets
    assert root.generate == [{"language": "typescript", "out-dir": "./bindings"}]
    assert first.fields == {"database": "region-1-local", "server": "local", "module_path": "./server"}
    assert first.generate is None  # generate is never inherited
    assert second.fields == {"database": "region-2", "server": "local", "bin_path": "./built.wasm"}


def test_dev_takes_run_only_with_upstreams_message(tmp_path: Path) -> None:
    """Upstream's smoketest standalone/cli/dev.rs, config_with_invalid_field_shows_error."""
    write(tmp_path, "spacetime.json", {"dev": {"run_command": "npm run dev"}, "database": "x"})
    with pytest.raises(CliError) as refused:
        load_project_config(tmp_path)
    assert (
        refused.value.message == "Failed to load spacetime.json: unknown field `run_command`, expected `run`"
    )
    write(tmp_path, "spacetime.json", {"dev": {"run": "npm run dev"}})
    config = load_project_config(tmp_path)
    assert config is not None and config.dev_run == "npm run dev"
    write(tmp_path, "spacetime.json", {"children": [{"dev": {"run": "x"}}]})
    with pytest.raises(CliError, match="`dev` is allowed at the root only"):
        load_project_config(tmp_path)


@pytest.mark.parametrize(
    "text, problem",
    [
        ('{"database": "x", // a comment\n}', "is not valid JSON"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"children": {"database": "x"}}', "`children` of the root must be a list of objects"),
        ('{"generate": "typescript"}', "`generate` of the root must be a list of objects"),
        ('{"dev": {"run": 3}}', "`dev.run` must be a command line"),
    ],
)
def test_a_bad_file_names_its_problem(tmp_path: Path, text: str, problem: str) -> None:
    write(tmp_path, "spacetime.json", text)
    with pytest.raises(CliError) as refused:
        load_project_config(tmp_path)
    assert (
        refused.value.message.startswith("Failed to load spacetime.json: ")
        and problem in refused.value.message
    )


def test_targets_are_selected_by_glob_and_keys_are_checked(tmp_path: Path) -> None:
    write(tmp_path, "spacetime.json", {"children": [{"database": "region-1"}, {"database": "region-2"}]})
    config = load_project_config(tmp_path)
    assert config is not None
    assert [t.database for t in select_targets(config, "region-*")] == ["region-1", "region-2"]
    assert [t.database for t in select_targets(config, "region-2")] == ["region-2"]
    with pytest.raises(
        CliError,
        match=re.escape("No database target matches 'other'. Available databases: region-1, region-2"),
    ):
        select_targets(config, "other")
    write(tmp_path, "spacetime.json", {"database": "only", "run-command": "x"})
    single = load_project_config(tmp_path)
    assert single is not None
    (target,) = select_targets(single, "other")  # the only target's settings, under the given name
    with pytest.raises(CliError, match="Config key 'run_command' is not supported in the config file"):
        check_keys(target, ("database", "num_replicas"), ("database",))
    write(tmp_path, "spacetime.json", {"database": "only", "num-replicas": 3})
    replicated = load_project_config(tmp_path)
    assert replicated is not None
    with pytest.raises(CliError, match="`num-replicas` is not supported by this CLI"):
        check_keys(replicated.targets[0], ("database", "num_replicas"), ("database",))


QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "chat" / "quickstart_chat.py"


def test_generate_runs_the_entries_of_spacetime_json(
    spacetime: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upstream's generate reads its `generate` entries (crates/cli/src/subcommands/generate.rs): the language,
    the output directory (relative to the file) and the module (the target's, else `spacetimedb/`)."""
    (tmp_path / "spacetimedb").mkdir()
    (tmp_path / "spacetimedb" / "module.py").write_text(QUICKSTART.read_text())
    entries = [
        {"language": "python", "out-dir": "./client/bindings"},
        {"language": "typescript", "out-dir": "./web/bindings"},
    ]
    write(tmp_path, "spacetime.json", {"database": "chat", "generate": entries})
    monkeypatch.chdir(tmp_path)

    result = spacetime("generate")
    assert result.code == 0, result
    assert f"Using configuration from {tmp_path / 'spacetime.json'}" in result.out
    assert (tmp_path / "client" / "bindings" / "tables.py").is_file()
    assert list((tmp_path / "web" / "bindings").glob("*.ts"))
    assert "No database target matches 'other'" in spacetime("generate", "other").err

    write(tmp_path, "spacetime.json", {"generate": [{"language": "csharp", "out-dir": "x"}]})
    assert "`language` must be one of python, typescript, python-module" in spacetime("generate").err
    write(tmp_path, "spacetime.json", {"database": "chat"})
    assert "spacetime.json lists no `generate` entries" in spacetime("generate").err
    explicit = spacetime("generate", "-l", "python", "-o", "cli_bindings", "-p", "spacetimedb")
    assert explicit.code == 0, explicit  # -l: the command line alone says what to generate
    assert (tmp_path / "cli_bindings" / "tables.py").is_file()
