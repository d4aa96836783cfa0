"""Port of upstream's standalone/cli/dev.rs. Upstream's ``dev`` scaffolds a project from a client template
(``--template react``, ``-t typescript``, ``basic-rs``) when there is none; this CLI's ``dev`` serves an existing
Python module. Both read spacetime.json (docs/cli.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_e2e.conftest import User

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

NOT_APPLICABLE = {
    "cli_dev_help_shows_template_option": "dev --template scaffolds upstream's TypeScript/React/Rust/C# client "
    "templates; this CLI's dev serves an existing Python module and has no client templates",
    "cli_dev_accepts_template_flag": "dev --template react scaffolds upstream's React client template; this CLI "
    "writes Python modules only",
    "cli_dev_accepts_short_template_flag": "dev -t typescript scaffolds upstream's TypeScript template; this CLI "
    "writes Python modules only",
    "cli_init_with_template_creates_project": "init --template basic-rs writes a Rust module and client; this "
    "CLI's init writes Python modules (standalone/create_project.rs is ported with --lang python)",
}

CONFIG = """{
  "dev": {
    "run_command": "npm run dev"
  },
  "publish": {
    "database": "test-db"
  }
}"""


def test_config_with_invalid_field_shows_error(tmp_path: Path):
    (tmp_path / "spacetime.json").write_text(CONFIG)
    (tmp_path / "spacetimedb").mkdir()
    (tmp_path / "spacetimedb" / "module.py").write_text("")
    result = User(tmp_path / "config", "http://127.0.0.1:1")("dev", "test-db", server=False, cwd=tmp_path)
    assert result.code != 0
    assert "Failed to load spacetime.json" in result.err
    assert "unknown field `run_command`" in result.err
