"""The transaction hot path compiled with mypyc, when it was built and still matches its sources.

``setup.py`` compiles the modules of ``COMPILED`` into one mypyc group (a shared library beside the package and a
small extension module beside each ``.py``) and writes a manifest: the sha256 of each compiled module's source.
``spacetimedb/__init__.py`` imports this module first. It uses the compiled modules only if
``SPACETIMEDB_PURE_PYTHON`` is not set to a true value, the manifest's hashes match the ``.py`` files present and
the group library loads; otherwise it puts a finder first on ``sys.meta_path`` that loads every one of them from
its ``.py``. Python prefers an extension module to a source file of the same name, so without the finder an
editable install whose sources were edited after the build would run the old compiled code.

Imports nothing from the project (any layer may use it), and costs one or two milliseconds: no json, no
hashlib. It also keeps an extension module that an earlier in-place build left beside a module no longer listed
from being loaded (``stray_extensions``).
"""

from __future__ import annotations

import os
import sys
from importlib.machinery import EXTENSION_SUFFIXES, ModuleSpec, SourceFileLoader

# not `from typing import TYPE_CHECKING`: see spacetimedb/__init__.py
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

try:  # hashlib would load OpenSSL: ~4 ms on a slow machine, more than everything else here together
    from _sha256 import sha256  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - Python 3.12 renamed it
    from hashlib import sha256

# The modules compiled into the group, as paths from src/ (what mypyc is given). setup.py reads this tuple
# without importing the package: keep it a literal.
COMPILED: tuple[str, ...] = (
    "spacetimedb/datastore/tx.py",
    "spacetimedb/datastore/table.py",
    "spacetimedb/datastore/index.py",
    "spacetimedb/datastore/locking.py",
    "spacetimedb/commitlog/txdata.py",
    "spacetimedb/db/relational_db.py",
    "spacetimedb/host/module_host.py",
    "spacetimedb/module/index_handles.py",
    "spacetimedb/module/calls.py",
    "spacetimedb/host/metrics.py",
    "spacetimedb/durability/worker.py",
    "spacetimedb/host/clock.py",
    "spacetimedb/protocol/deadline.py",
    "spacetimedb/protocol/v2.py",
    "spacetimedb/host/clients.py",
    "spacetimedb/commitlog/log.py",
    "spacetimedb/host/channel.py",
    "spacetimedb/protocol/deliveries.py",
)
# mypyc's group name: the shared library is the top-level module GROUP + "__mypyc"
GROUP = "spacetimedb_native"
GROUP_LIBRARY = GROUP + "__mypyc"
# written by setup.py into the package directory
MANIFEST = "_native_manifest.sha256"
# a manifest line that says why nothing was compiled (the build was skipped or failed)
NOT_COMPILED = "# not compiled: "
# set to a true value: run the pure-Python modules even where compiled ones are installed (workers inherit it)
PURE_ENV = "SPACETIMEDB_PURE_PYTHON"
# set to 0 (or false, no, off) when installing: do not compile
BUILD_ENV = "SPACETIMEDB_BUILD_NATIVE"

_FALSE = ("", "0", "false", "no", "off")


def env_true(value: str | None) -> bool:
    """Whether an environment variable's value means yes: set to anything but empty, 0, false, no or off."""
    return value is not None and value.strip().lower() not in _FALSE


def module_name(path: str) -> str:
    """``spacetimedb/datastore/tx.py`` -> ``spacetimedb.datastore.tx`` (a package's ``__init__.py`` is the package)."""
    parts = path.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


class Decision:
    """What the guard chose, and why. ``warning`` is set when a build exists but cannot be used."""

    __slots__ = ("active", "reason", "warning")

    def __init__(self, active: bool, reason: str, warning: str | None = None) -> None:
        self.active = active
        self.reason = reason
        self.warning = warning


def decide(package_dir: str, environ: Mapping[str, str] = os.environ) -> Decision:
    """Whether the compiled modules under ``package_dir`` (the ``spacetimedb`` directory) may be used.

    Checks only files: loading the group library is the caller's last step (see ``_guard``)."""
    if env_true(environ.get(PURE_ENV)):
        return Decision(False, f"{PURE_ENV} is set")
    try:
        with open(os.path.join(package_dir, MANIFEST), encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return Decision(False, "not compiled (no native build installed)")
    recorded: dict[str, str] = {}
    for line in lines:
        if line.startswith(NOT_COMPILED):
            return Decision(False, "not compiled: " + line[len(NOT_COMPILED) :])
        if line and not line.startswith("#"):
            digest, _, relative = line.partition("  ")
            recorded[relative] = digest
    expected = [path.removeprefix("spacetimedb/") for path in COMPILED]
    if sorted(recorded) != sorted(expected):
        return _stale("the build compiled other modules than COMPILED lists")
    suffix = EXTENSION_SUFFIXES[0]
    for relative in expected:
        source = os.path.join(package_dir, relative)
        try:
            with open(source, "rb") as f:
                digest = sha256(f.read()).hexdigest()
        except OSError:
            return _stale(f"{relative} is missing")
        if digest != recorded[relative]:
            return _stale(f"{relative} changed since it was compiled")
        if not os.path.exists(source.removesuffix(".py") + suffix):
            return _stale(f"the compiled {relative.removesuffix('.py')}{suffix} is missing")
    library = os.path.join(os.path.dirname(package_dir), GROUP_LIBRARY + suffix)
    if not os.path.exists(library):
        return _stale(f"the group library {GROUP_LIBRARY}{suffix} is missing")
    return Decision(True, f"compiled (mypyc): {len(expected)} modules")


def _stale(why: str) -> Decision:
    return Decision(
        False,
        f"compiled modules unusable: {why}",
        f"spacetimedb: running the pure-Python hot path: {why} (reinstall to recompile: pip install -e .)",
    )


def stray_extensions(package_dir: str) -> list[str]:
    """The modules (as ``spacetimedb/...py`` paths) with both a ``.py`` and an extension module beside it
    although ``COMPILED`` does not list them: left by an earlier in-place build that compiled them. Python would
    load the extension, built against another group library."""
    base = os.path.dirname(package_dir)
    listed = set(COMPILED)
    strays = []
    for directory, subdirectories, files in os.walk(package_dir):
        subdirectories[:] = [d for d in subdirectories if d != "__pycache__"]
        names = set(files)
        for name in files:
            suffix = next((s for s in EXTENSION_SUFFIXES if name.endswith(s)), None)
            if suffix is None or name.removesuffix(suffix) + ".py" not in names:
                continue
            source = os.path.join(directory, name.removesuffix(suffix) + ".py")
            path = os.path.relpath(source, base).replace(os.sep, "/")
            if path not in listed:
                strays.append(path)
    return sorted(strays)


class SourceFinder:
    """First on ``sys.meta_path``: these modules' names (``spacetimedb/...py`` paths; default: the compiled
    ones) load from their ``.py`` files."""

    def __init__(self, package_dir: str, paths: Iterable[str] = COMPILED) -> None:
        base = os.path.dirname(package_dir)
        self.sources = {module_name(path): os.path.join(base, *path.split("/")) for path in paths}

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> ModuleSpec | None:
        source = self.sources.get(fullname)
        if source is None:
            return None
        is_package = os.path.basename(source) == "__init__.py"
        spec = ModuleSpec(fullname, SourceFileLoader(fullname, source), origin=source, is_package=is_package)
        if is_package:
            spec.submodule_search_locations = [os.path.dirname(source)]
        spec.has_location = True  # sets __file__ and lets the bytecode cache be used
        return spec


_decision: Decision


def _guard() -> Decision:
    package_dir = os.path.dirname(os.path.abspath(__file__))
    decision = decide(package_dir)
    if decision.active:
        try:
            __import__(GROUP_LIBRARY)
        except Exception as e:  # a library built for another interpreter, a missing symbol, a truncated file
            decision = _stale(f"the group library {GROUP_LIBRARY} does not load ({e})")
    strays = stray_extensions(package_dir)
    from_source = strays if decision.active else [*COMPILED, *strays]
    if from_source:
        sys.meta_path.insert(0, SourceFinder(package_dir, from_source))
    if not decision.active and decision.warning is not None:
        print(decision.warning, file=sys.stderr)
    return decision


def active() -> bool:
    """Whether this process runs the compiled (mypyc) modules."""
    return _decision.active


def status() -> str:
    """``compiled (mypyc): N modules`` or ``pure Python: <why>``."""
    return _decision.reason if _decision.active else "pure Python: " + _decision.reason


_decision = _guard()
