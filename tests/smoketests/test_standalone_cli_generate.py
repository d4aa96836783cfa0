"""Port of upstream's standalone/cli/generate.rs: with a spacetime.json whose ``generate`` entry names other
paths, ``spacetime generate`` follows its command-line arguments. Upstream generates Rust bindings from a Rust
module; here Python bindings from a Python module."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_e2e.conftest import User
from tests.smoketests.modules import init_project

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

NOT_APPLICABLE: dict[str, str] = {}

CONFIG = """{
  "generate": [
    {
      "language": "typescript",
      "out-dir": "./config-output",
      "module-path": "config-module-path"
    }
  ]
}"""


def test_cli_generate_with_config_but_no_match_uses_cli_args(tmp_path: Path):
    user = User(tmp_path / "config", "http://127.0.0.1:1")  # generating from a module needs no server
    module_dir = init_project(user, tmp_path)
    (module_dir / "spacetime.json").write_text(CONFIG)
    output_dir = module_dir / "cli-output"
    output_dir.mkdir()
    generated = user(
        "generate",
        "--lang",
        "python",
        "--out-dir",
        str(output_dir),
        "--module-path",
        str(module_dir),
        server=False,
        cwd=module_dir,
    )
    assert generated.code == 0, generated
    assert (output_dir / "__init__.py").is_file()
    assert not (module_dir / "config-output").exists()
