"""Client bindings (``spacetime generate``) from a module definition, for Python and TypeScript.

Owns: reading RawModuleDef v9 JSON into a generation model (``model``), identifier case rules shared with
SpacetimeDB's generator (``naming``), the TypeScript bindings of the npm ``spacetimedb`` SDK (``typescript``)
and the typed package for :mod:`spacetimedb.client` (``python``).
May import: ``spacetimedb.sats``, ``spacetimedb.protocol`` and ``spacetimedb.module`` only.

Generation always starts from RawModuleDef v9 JSON -- what a module file gives
(``load_module(...).module_def.raw_v9_json()``) and what a running database serves
(``GET /v1/database/:name/schema?version=9``) -- so both sources produce identical bindings.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .model import CodegenError, ModuleModel, read_module_def

LANGUAGES = ("python", "typescript")

__all__ = [
    "LANGUAGES",
    "CodegenError",
    "ModuleModel",
    "generate",
    "module_def_json_from_path",
    "read_module_def",
]


def generate(
    raw_module_def: Mapping[str, Any],
    lang: str,
    *,
    include_private: bool = False,
    warnings: list[str] | None = None,
) -> dict[str, str]:
    """Bindings for ``lang`` as ``{relative path: file text}``; raises ``CodegenError`` when impossible.

    A name the bindings cannot use as the module spells it (an index accessor that would hide a method of the
    SDK's table handle, ...) is renamed or left to a generic accessor, and ``warnings`` gets a line saying so.
    """
    model = read_module_def(raw_module_def)
    found: list[str] = []
    if lang == "typescript":
        from .typescript import generate_typescript

        files = generate_typescript(model, include_private, found)
    elif lang == "python":
        from .python import generate_python

        files = generate_python(model, include_private, found)
    else:
        raise CodegenError(f"unknown language {lang!r}; choose one of {', '.join(LANGUAGES)}")
    if warnings is not None:
        warnings.extend(dict.fromkeys(found))  # a table's options are written more than once
    return files


def module_def_json_from_path(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a module file or package (as ``spacetime publish`` would) and return its RawModuleDef v9 JSON.

    Event tables carry ``"is_event": true`` (V10's flag, which V9 lacks): the bindings need it, because the SDKs
    must never cache an event table's rows.

    Raises ``spacetimedb.module.ModuleError`` when the module is invalid, ``OSError`` when it cannot be read.
    """
    from spacetimedb.module import load_module, package_program

    program, kind = package_program(path)
    loaded = load_module(program, kind, name=os.path.basename(os.fspath(path)))
    try:
        return loaded.module_def.raw_v9_json(event_flags=True)  # type: ignore[no-any-return]  # the raw definition is JSON, typed Any
    finally:
        loaded.unload()
