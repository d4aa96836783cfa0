"""Port of upstream's standalone/create_project.rs: ``spacetime init --non-interactive`` needs ``--lang``, writes
the project at ``--project-path``, and refuses a project that exists. Upstream's ``--lang=rust`` is
``--lang=python`` here."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_e2e.conftest import User
from tests.smoketests.modules import init_project

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

NOT_APPLICABLE: dict[str, str] = {}


def test_create_project(tmp_path: Path):
    user = User(tmp_path / "config", "http://127.0.0.1:1")  # init never talks to a server
    project = tmp_path / "project"
    project.mkdir()
    without_lang = user("init", "--non-interactive", "test-project", server=False, cwd=project)
    assert without_lang.code != 0, without_lang
    with_path = user(
        "init", "--non-interactive", "--project-path", str(project), "test-project", server=False
    )
    assert with_path.code != 0, with_path
    init_project(user, project)
    assert (project / "spacetimedb" / "module.py").is_file()
    again = user(
        "init",
        "--non-interactive",
        "--lang=python",
        "--project-path",
        str(project),
        "test-project",
        server=False,
    )
    assert again.code != 0, again
