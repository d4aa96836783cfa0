"""Turning a module's ESM bundle into a script V8 can evaluate here.

``spacetime build`` (rolldown) and esbuild emit one ES module whose only imports are the host's synthetic modules
``spacetime:sys@2.0`` / ``@2.1`` and whose exports are one or more ``export { a, b as c }`` lists. mini-racer
evaluates classic scripts only, so the bundle becomes a function expression: its imports turn into constants
taken from the function's argument (a lookup of the synthetic module by version) and its export lists into the
object the function returns. Anything else (another import, another export form, the v1 ABI of npm
``spacetimedb`` 1.x) is refused with the reason, before any of the module's code runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SYS_MODULE = re.compile(r"spacetime:sys@(?P<version>\d+\.\d+)")
SUPPORTED_SYS_VERSIONS = ("2.0", "2.1")

_IMPORT = re.compile(
    r"^[ \t]*import\s*(?P<clause>[^'\";]*?)\s*from\s*(?P<quote>['\"])(?P<spec>[^'\"]+)(?P=quote)[ \t]*;?",
    re.M,
)
_BARE_IMPORT = re.compile(r"^[ \t]*import\s*(?P<quote>['\"])(?P<spec>[^'\"]+)(?P=quote)[ \t]*;?", re.M)
_EXPORT_LIST = re.compile(r"^[ \t]*export\s*\{(?P<names>[^}]*)\}[ \t]*;?", re.M)
_OTHER_EXPORT = re.compile(r"^[ \t]*export\s+(?P<form>default|const|let|var|function|class|async|\*)\b", re.M)
_IDENTIFIER = re.compile(r"^[A-Za-z_$][\w$]*$")


class BundleError(ValueError):
    """The program is not an ESM bundle this host can run; the message says what is wrong."""


@dataclass(frozen=True)
class Script:
    """The bundle as a function expression ``(function (sys) { ...; return exports })``."""

    source: str
    sys_versions: tuple[str, ...]
    exports: tuple[str, ...]


def looks_like_js(program: bytes) -> bool:
    """Whether ``program`` is a JS bundle for this host (it imports ``spacetime:sys@...``)."""
    head = program[: 1 << 20]
    return b"spacetime:sys@" in head and b"\0" not in head


def to_script(program: bytes, name: str = "bundle.js") -> Script:
    """Rewrite ``program`` (UTF-8 ESM) as a script; raises ``BundleError`` naming what cannot be served."""
    try:
        text = program.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BundleError(f"the JS bundle is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    bindings: list[str] = []
    versions: list[str] = []

    def hoist(match: re.Match[str]) -> str:
        version = _sys_version(match["spec"])
        if version not in versions:
            versions.append(version)
        bindings.append(_binding(match["clause"], version))
        return ""

    text = _IMPORT.sub(hoist, text)
    bare = _BARE_IMPORT.search(text)
    if bare is not None:
        raise BundleError(
            f"the bundle imports {bare['spec']!r} for its side effects; bundle every dependency in"
        )
    exported: dict[str, str] = {}

    def collect(match: re.Match[str]) -> str:
        for name_, local in _export_names(match["names"]):
            exported[name_] = local
        return ""

    text = _EXPORT_LIST.sub(collect, text)
    other = _OTHER_EXPORT.search(text)
    if other is not None:
        raise BundleError(
            f"the bundle uses `export {other['form']} ...`; this host runs bundles that end in one export list "
            "(`export { ... }`), as `spacetime build`, rolldown and esbuild produce"
        )
    if "default" not in exported:
        raise BundleError("the bundle has no default export: a module exports its schema(...) as default")
    returned = ", ".join(f"{_js_string(key)}: {local}" for key, local in sorted(exported.items()))
    # the prologue shares the bundle's first line, so stack traces give the bundle's own line numbers
    source = (
        "(function (__stdb_sys) {'use strict';"
        + "".join(bindings)
        + text
        + f"\n;return {{{returned}}};\n}})\n//# sourceURL={name}\n"
    )
    return Script(source, tuple(versions), tuple(sorted(exported)))


def _sys_version(spec: str) -> str:
    match = SYS_MODULE.fullmatch(spec)
    if match is None:
        raise BundleError(
            f"the bundle imports {spec!r}; the only modules the host provides are spacetime:sys@2.0 and @2.1 "
            "(bundle every other dependency in)"
        )
    version = match["version"]
    if version not in SUPPORTED_SYS_VERSIONS:
        raise BundleError(
            f"the bundle needs spacetime:sys@{version}; this host provides the module ABI 2.0 and 2.1 "
            "(npm spacetimedb 2.x): rebuild the module with spacetimedb 2.x"
        )
    return version


def _binding(clause: str, version: str) -> str:
    clause = " ".join(clause.split())
    source = f"__stdb_sys({_js_string(version)})"
    if clause.startswith("* as "):
        name = clause[5:].strip()
        _check_identifier(name)
        return f"const {name} = {source};"
    if clause.startswith("{") and clause.endswith("}"):
        parts = []
        for imported, local in _export_names(clause[1:-1]):
            _check_identifier(imported)
            parts.append(imported if imported == local else f"{imported}: {local}")
        return f"const {{{', '.join(parts)}}} = {source};"
    raise BundleError(
        f"the bundle imports `{clause}` from spacetime:sys@{version}, which has no default export"
    )


def _export_names(names: str) -> list[tuple[str, str]]:
    """``a, b as c`` → [(a, a), (c, b)]: (exported name, local name)."""
    pairs = []
    for item in names.split(","):
        words = item.split()
        if not words:
            continue
        if len(words) == 1:
            local = exported = words[0]
        elif len(words) == 3 and words[1] == "as":
            local, exported = words[0], words[2]
        else:
            raise BundleError(f"cannot read the export or import list item {item.strip()!r}")
        _check_identifier(local)
        pairs.append((exported.strip("'\""), local))
    return pairs


def _check_identifier(name: str) -> None:
    if not _IDENTIFIER.match(name):
        raise BundleError(f"{name!r} is not a JS identifier")


def _js_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
