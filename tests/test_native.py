"""spacetimedb.native: the compiled (mypyc) hot path is used only when it matches its sources and is not
switched off; otherwise every compiled module loads from its .py, even with a stale extension module beside it."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

import spacetimedb
from spacetimedb import native
from spacetimedb.controller.process import worker_environment

PACKAGE = Path(spacetimedb.__file__).resolve().parent
SUFFIX = EXTENSION_SUFFIXES[0]
RELATIVE = [path.removeprefix("spacetimedb/") for path in native.COMPILED]


def manifest_for(package: Path) -> str:
    """What setup.py writes after compiling: the sources' sha256 in sha256sum's format."""
    lines = ["# compiled by mypyc into the group " + native.GROUP]
    for relative in RELATIVE:
        lines.append(f"{hashlib.sha256((package / relative).read_bytes()).hexdigest()}  {relative}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def built(tmp_path: Path) -> Path:
    """A package directory that looks freshly built: sources, manifest, extension files, group library."""
    package = tmp_path / "spacetimedb"
    for relative in RELATIVE:
        (package / relative).parent.mkdir(parents=True, exist_ok=True)
        (package / relative).write_text(f"# {relative}\n")
        (package / relative.removesuffix(".py")).with_suffix(SUFFIX).write_bytes(b"")
    (package / native.MANIFEST).write_text(manifest_for(package))
    (tmp_path / (native.GROUP_LIBRARY + SUFFIX)).write_bytes(b"")
    return package


def test_a_build_that_matches_its_sources_is_used(built: Path) -> None:
    decision = native.decide(str(built), {})
    assert decision.active and decision.warning is None
    assert decision.reason == f"compiled (mypyc): {len(native.COMPILED)} modules"


def test_an_edited_source_makes_the_build_stale(built: Path) -> None:
    (built / "datastore" / "tx.py").write_text("# edited after the build\n")
    decision = native.decide(str(built), {})
    assert not decision.active
    assert "datastore/tx.py changed since it was compiled" in decision.reason
    assert decision.warning is not None and "datastore/tx.py" in decision.warning


def test_a_missing_extension_module_or_group_library_makes_the_build_stale(built: Path) -> None:
    (built / "db" / "relational_db").with_suffix(SUFFIX).unlink()
    decision = native.decide(str(built), {})
    assert not decision.active and decision.warning is not None
    assert "relational_db" in decision.reason

    (built / "db" / "relational_db").with_suffix(SUFFIX).write_bytes(b"")
    (built.parent / (native.GROUP_LIBRARY + SUFFIX)).unlink()
    decision = native.decide(str(built), {})
    assert not decision.active and decision.warning is not None
    assert native.GROUP_LIBRARY in decision.reason


def test_a_module_added_to_the_list_after_the_build_makes_it_stale(built: Path) -> None:
    manifest = built / native.MANIFEST
    manifest.write_text("".join(line + "\n" for line in manifest.read_text().splitlines()[:-1]))
    decision = native.decide(str(built), {})
    assert not decision.active and decision.warning is not None


def test_the_environment_variable_forces_pure_python_without_a_warning(built: Path) -> None:
    decision = native.decide(str(built), {native.PURE_ENV: "1"})
    assert not decision.active and decision.warning is None
    assert decision.reason == f"{native.PURE_ENV} is set"
    for value in ("", "0", "false", "No", " off "):
        assert native.decide(str(built), {native.PURE_ENV: value}).active, value


def test_no_build_or_a_failed_one_is_pure_python_without_a_warning(built: Path) -> None:
    manifest = built / native.MANIFEST
    manifest.write_text(
        f"{native.NOT_COMPILED}compiling failed: the C compiler (false) exited with status 1\n"
    )
    decision = native.decide(str(built), {})
    assert not decision.active and decision.warning is None
    assert decision.reason == "not compiled: compiling failed: the C compiler (false) exited with status 1"

    manifest.unlink()
    decision = native.decide(str(built), {})
    assert not decision.active and decision.warning is None
    assert decision.reason.startswith("not compiled")


def run_python(code: str, pythonpath: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in (native.PURE_ENV, "PYTHONPATH")}
    if pythonpath is not None:
        environ["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=pythonpath or PACKAGE.parent,
    )


IMPORT_AND_REPORT = (
    "import spacetimedb.native as n, importlib\n"
    "for path in n.COMPILED: print(importlib.import_module(n.module_name(path)).__file__)\n"
    "print(n.status())\n"
)


def test_a_stale_build_loads_every_compiled_module_from_source(tmp_path: Path) -> None:
    """A copy of the installed package whose tx.py was edited after the build: the guard must load all the
    listed modules from .py, although an extension module (compiled here, or a junk file that would fail to
    load where nothing was compiled) sits beside each."""
    copy = tmp_path / "spacetimedb"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    library = PACKAGE.parent / (native.GROUP_LIBRARY + SUFFIX)
    if library.exists():
        shutil.copy2(library, tmp_path / library.name)
    for relative in RELATIVE:
        extension = (copy / relative.removesuffix(".py")).with_suffix(SUFFIX)
        if not extension.exists():
            extension.write_bytes(b"not a shared object")
    (copy / native.MANIFEST).write_text(manifest_for(copy))
    with (copy / "datastore" / "tx.py").open("a") as f:
        f.write("# edited after the build\n")

    done = run_python(IMPORT_AND_REPORT, pythonpath=tmp_path)
    assert done.returncode == 0, done.stderr
    *files, status = done.stdout.splitlines()
    assert files == [str(copy / relative) for relative in RELATIVE]
    assert status == "pure Python: compiled modules unusable: datastore/tx.py changed since it was compiled"
    warnings = [line for line in done.stderr.splitlines() if line.startswith("spacetimedb:")]
    assert len(warnings) == 1 and "datastore/tx.py changed" in warnings[0], done.stderr


def test_extension_modules_the_list_does_not_name_are_strays(built: Path) -> None:
    assert native.stray_extensions(str(built)) == []
    (built / "host").mkdir(exist_ok=True)
    assert "spacetimedb/host/worker.py" not in native.COMPILED
    (built / "host" / "worker.py").write_text("# compiled by an earlier build, not any more\n")
    (built / "host" / ("worker" + SUFFIX)).write_bytes(b"")
    (built / ("_speedups" + SUFFIX)).write_bytes(b"")  # an extension without a source is someone else's
    assert native.stray_extensions(str(built)) == ["spacetimedb/host/worker.py"]
    assert native.decide(str(built), {}).active  # the listed modules are still fine


def test_a_stray_extension_module_is_not_loaded(tmp_path: Path) -> None:
    """An in-place build leaves the extension of a module later taken off the list: it was built against an
    older group library, so the module must load from its .py, on either path."""
    copy = tmp_path / "spacetimedb"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    library = PACKAGE.parent / (native.GROUP_LIBRARY + SUFFIX)
    if library.exists():
        shutil.copy2(library, tmp_path / library.name)
    (copy / "sats" / ("values" + SUFFIX)).write_bytes(b"not a shared object")
    code = (
        "import spacetimedb.sats.values as v, spacetimedb.native as n\nprint(v.__file__)\nprint(n.status())\n"
    )
    for env in ({}, {native.PURE_ENV: "1"}):
        untouched = run_python("import spacetimedb.native as n; print(n.status())", **env)
        done = run_python(code, pythonpath=tmp_path, **env)
        assert done.returncode == 0, done.stderr
        file, status = done.stdout.splitlines()
        assert file == str(copy / "sats" / "values.py")
        assert status == untouched.stdout.strip()  # the stray changes nothing else


def test_the_environment_variable_makes_a_process_pure() -> None:
    done = run_python(IMPORT_AND_REPORT, **{native.PURE_ENV: "1"})
    assert done.returncode == 0, done.stderr
    *files, status = done.stdout.splitlines()
    assert all(file.endswith(".py") for file in files), files
    assert status == f"pure Python: {native.PURE_ENV} is set"
    assert "spacetimedb:" not in done.stderr


def test_the_guard_is_cheap() -> None:
    """It runs on every import of spacetimedb (every CLI command): no json, no hashlib, no importlib.util."""
    done = run_python(
        "import spacetimedb, sys; print(sorted({'json', 'hashlib', 'importlib.util'} & set(sys.modules)))"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_workers_inherit_only_the_choice_of_the_pure_python_hot_path() -> None:
    assert worker_environment({"HOME": "/root", native.PURE_ENV: "1"}) == {native.PURE_ENV: "1"}
    assert worker_environment({"HOME": "/root", "PATH": "/bin"}) == {}


def compiled_module_files() -> list[str]:
    import importlib

    return [str(importlib.import_module(native.module_name(path)).__file__) for path in native.COMPILED]


def test_the_compiled_modules_are_the_ones_imported_when_active() -> None:
    if not native.active():
        pytest.skip(f"the compiled hot path is not active in this run ({native.status()})")
    files = compiled_module_files()
    assert all(file.endswith(SUFFIX) for file in files), files
    assert native.status() == f"compiled (mypyc): {len(native.COMPILED)} modules"


def test_the_sources_are_the_ones_imported_in_a_pure_run() -> None:
    if native.active():
        pytest.skip("the compiled hot path is active in this run (SPACETIMEDB_PURE_PYTHON=1 runs this test)")
    files = compiled_module_files()
    assert all(file.endswith(".py") for file in files), files
    assert native.status().startswith("pure Python: ")


def test_the_installed_build_did_not_fail_its_type_check() -> None:
    """Without a C compiler the install falls back to pure Python, as it should; but mypyc's type-check fails
    only on this project's code, or on a typed import that the isolated build environment lacks (a fresh
    machine: its dependencies are installed after the build). Both are bugs here, which a fallback would hide:
    every test would still pass, on the slow path."""
    reason = native.decide(str(PACKAGE), {}).reason
    assert "mypyc failed" not in reason, reason
