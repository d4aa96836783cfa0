"""Compiles the transaction hot path with mypyc when it can; the metadata is in pyproject.toml.

The modules are those of ``COMPILED`` in src/spacetimedb/native.py (read from its text: the package is not
importable while it is being built). Compiling is optional: without mypyc, a C compiler or Python's headers, or
when any step fails, the build prints one warning line and installs the pure-Python package, which is always
complete. ``SPACETIMEDB_BUILD_NATIVE=0`` skips compiling. Either way the build writes the manifest the runtime
guard (spacetimedb.native) reads: the compiled sources' hashes, or why nothing was compiled.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import io
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from setuptools import Command, Distribution, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
NATIVE = ROOT / "src" / "spacetimedb" / "native.py"


def _constants() -> dict[str, Any]:
    """The literal module-level constants of native.py."""
    found: dict[str, Any] = {}
    for node in ast.parse(NATIVE.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.AnnAssign | ast.Assign):
            targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
            for target in targets:
                if isinstance(target, ast.Name) and node.value is not None:
                    try:
                        found[target.id] = ast.literal_eval(node.value)
                    except ValueError:  # not a literal (GROUP_LIBRARY = GROUP + ...)
                        pass
    return found


NATIVE_CONSTANTS = _constants()
COMPILED: tuple[str, ...] = NATIVE_CONSTANTS["COMPILED"]
GROUP: str = NATIVE_CONSTANTS["GROUP"]
MANIFEST: str = NATIVE_CONSTANTS["MANIFEST"]
NOT_COMPILED: str = NATIVE_CONSTANTS["NOT_COMPILED"]
BUILD_ENV: str = NATIVE_CONSTANTS["BUILD_ENV"]
# setup.py runs once per build step; the ones that only write metadata or list sources need not run mypyc
METADATA_COMMANDS = {"egg_info", "dist_info", "sdist"}


def _native_requested() -> bool:
    return os.environ.get(BUILD_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def _warn(message: str) -> None:
    # pip shows a build's output only with -v; spacetimedb.native.status() repeats the reason at run time
    print(f"WARNING: spacetimedb: {message}", file=sys.stderr, flush=True)


class NativeDistribution(Distribution):
    """Has extension modules when compiling is asked for, before mypyc has produced them: build_ext runs mypyc
    itself, so that the steps of a build that only write metadata do not type-check the package."""

    def has_ext_modules(self) -> bool:
        return _native_requested() or super().has_ext_modules()


def _manifest_paths(command: Command) -> list[Path]:
    """Where a build puts the manifest: its build directory and, installing in place (editable), the sources."""
    build_py = command.get_finalized_command("build_py")
    paths = [Path(build_py.build_lib) / "spacetimedb" / MANIFEST]
    if getattr(command, "inplace", False) or getattr(command, "editable_mode", False):
        paths.append(ROOT / build_py.get_package_dir("spacetimedb") / MANIFEST)
    return paths


def _write_manifest(command: Command, text: str) -> None:
    for path in _manifest_paths(command):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


class ManifestBuildPy(build_py):
    """Without compiling (``SPACETIMEDB_BUILD_NATIVE=0``) build_ext does not run: this says why nothing was
    compiled, replacing the manifest of an earlier build that an editable install's sources still hold."""

    def run(self) -> None:
        super().run()
        if not _native_requested():
            _write_manifest(
                self, f"{NOT_COMPILED}skipped ({BUILD_ENV}={os.environ.get(BUILD_ENV)} at install)\n"
            )


class OptionalBuildExt(build_ext):
    """Compiles ``COMPILED`` into one mypyc group; any failure leaves the pure-Python package, with a warning."""

    def finalize_options(self) -> None:
        self._failure: str | None = None
        if not set(self.distribution.commands) <= METADATA_COMMANDS:
            self._mypycify()
        super().finalize_options()

    def _mypycify(self) -> None:
        """Type-checks the package and writes the group's C sources to ./build: the extensions to compile."""
        output = io.StringIO()
        try:
            from mypyc.build import mypycify

            with contextlib.redirect_stdout(output):  # mypyc prints mypy's errors, then exits
                self.distribution.ext_modules = mypycify(
                    [f"src/{path}" for path in COMPILED], opt_level="3", group_name=GROUP
                )
        except (Exception, SystemExit) as e:
            errors = [line for line in output.getvalue().splitlines() if ": error: " in line]
            self._failure = "mypyc failed: " + (errors[0] if errors else _one_line(e))
            self.distribution.ext_modules = []
        finally:
            sys.stderr.write(output.getvalue())

    def run(self) -> None:
        started = time.monotonic()
        if self._failure is None:
            try:
                super().run()
            except (Exception, SystemExit) as e:  # no C compiler, no Python.h, a compiler error
                self._failure = f"compiling failed: {_one_line(e)}"
                for output in self.get_outputs():  # what was built before the failure
                    Path(output).unlink(missing_ok=True)
        if self._failure is None:
            _write_manifest(self, _manifest())
            print(f"spacetimedb: compiled {len(COMPILED)} modules in {time.monotonic() - started:.0f} s")
        else:
            _write_manifest(self, f"{NOT_COMPILED}{self._failure}\n")
            _warn(f"installing the pure-Python hot path, not the compiled one: {self._failure}")


def _one_line(e: BaseException) -> str:
    cause: BaseException | None = e
    while cause is not None:  # a failed compiler: its message quotes every argument, the program is enough
        if isinstance(cause, subprocess.CalledProcessError):
            program = cause.cmd[0] if isinstance(cause.cmd, list | tuple) else str(cause.cmd).split()[0]
            return f"the C compiler ({program}) exited with status {cause.returncode}"
        cause = cause.__cause__ or cause.__context__
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _manifest() -> str:
    """sha256sum's format, paths from the package directory: ``cd spacetimedb && sha256sum -c`` checks it."""
    lines = ["# compiled by mypyc into the group " + GROUP]
    for path in COMPILED:
        digest = hashlib.sha256((ROOT / "src" / path).read_bytes()).hexdigest()
        lines.append(f"{digest}  {path.removeprefix('spacetimedb/')}")
    return "\n".join(lines) + "\n"


setup(distclass=NativeDistribution, cmdclass={"build_py": ManifestBuildPy, "build_ext": OptionalBuildExt})
