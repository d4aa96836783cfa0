"""Shared by the client tests: publishing a module to a real server, writing generated bindings."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from spacetimedb.codegen import generate, module_def_json_from_path
from spacetimedb.module import package_program

ROOT = Path(__file__).resolve().parents[2]
CHAT_MODULE = ROOT / "examples" / "chat" / "quickstart_chat.py"


def publish(url: str, name: str, module: Path = CHAT_MODULE) -> None:
    """``PUT /v1/database/<name>`` with the module program, as ``spacetime publish`` does."""
    program, _ = package_program(module)
    request = urllib.request.Request(f"{url}/v1/database/{name}", data=program, method="PUT")
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 200, response.read()


def write_bindings(module: Path, lang: str, out_dir: Path, include_private: bool = False) -> dict[str, str]:
    files = generate(module_def_json_from_path(module), lang, include_private=include_private)
    for relative, text in files.items():
        path = out_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return files
