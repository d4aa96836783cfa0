"""Building a TypeScript module project into the one ESM bundle the server runs, as ``spacetime build`` does.

A TypeScript module project is a directory with ``package.json`` and ``src/index.ts`` (upstream's templates). Its
bundle is ``src/index.ts`` with every dependency inlined except the host's ``spacetime:sys@*`` modules, in ESM,
for a browser-like platform (no Node polyfills), with ``process.env.NODE_ENV`` defined as ``"production"``;
upstream uses rolldown, this uses esbuild (one native binary, the same output shape). esbuild comes from npm at
a pinned version, installed once into the user's cache directory (``$SPACETIME_TOOLS_CACHE``, else
``$XDG_CACHE_HOME/spacetimedb-py/tools``, else ``~/.cache/spacetimedb-py/tools``); the project's own
dependencies are installed with ``npm install`` when its ``node_modules`` lacks ``spacetimedb``. As upstream
does, ``tsc --noEmit`` type-checks the project first when it has a ``tsconfig.json`` and TypeScript installed.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

import click

from spacetimedb.cli.errors import CliError

ESBUILD_VERSION = "0.25.12"
INSTALL_TIMEOUT_SECONDS = 600
BUILD_TIMEOUT_SECONDS = 300
BUNDLE = Path("dist") / "bundle.js"
_NODE_HINT = "install Node.js (20 or later) with npm, e.g. from https://nodejs.org, and publish again"


def is_typescript_project(path: Path) -> bool:
    return path.is_dir() and (path / "package.json").is_file() and (path / "src" / "index.ts").is_file()


def tools_cache() -> Path:
    configured = os.environ.get("SPACETIME_TOOLS_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "spacetimedb-py" / "tools"


def build_typescript(project: Path) -> bytes:
    """Bundle the TypeScript module project ``project``; the bundle's bytes (also written to dist/bundle.js)."""
    npm = _require("npm")
    _require("node")
    if not (project / "node_modules" / "spacetimedb").is_dir():
        click.echo(f"Installing the npm dependencies of {project}", err=True)
        _run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error"], project, "npm install")
    tsc = project / "node_modules" / ".bin" / "tsc"
    if (project / "tsconfig.json").is_file() and tsc.exists():
        _run([str(tsc), "--noEmit"], project, "the TypeScript type check (tsc --noEmit)")
    esbuild = _esbuild(npm)
    output = project / BUNDLE
    output.parent.mkdir(exist_ok=True)
    _run(
        [
            str(esbuild),
            "src/index.ts",
            "--bundle",
            "--format=esm",
            "--platform=browser",
            "--external:spacetime:sys*",
            "--main-fields=module,main",
            "--conditions=production",
            '--define:process.env.NODE_ENV="production"',
            "--log-level=warning",
            f"--outfile={BUNDLE}",
        ],
        project,
        "bundling with esbuild",
    )
    return output.read_bytes()


def _require(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        raise CliError(f"publishing a TypeScript module needs {tool}, which is not on PATH", hint=_NODE_HINT)
    return found


def _esbuild(npm: str) -> Path:
    """The pinned esbuild binary, installed into the tools cache on first use."""
    directory = tools_cache() / f"esbuild-{ESBUILD_VERSION}"
    binary = directory / "node_modules" / ".bin" / "esbuild"
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two publishes at once install once
        if not (directory / ".complete").exists():
            click.echo(f"Installing esbuild {ESBUILD_VERSION} into {directory}", err=True)
            (directory / "package.json").write_text('{"name": "spacetime-tools", "private": true}\n')
            _run(
                [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", f"esbuild@{ESBUILD_VERSION}"],
                directory,
                f"installing esbuild {ESBUILD_VERSION}",
            )
            (directory / ".complete").write_text(f"esbuild@{ESBUILD_VERSION}\n")
    return binary


def _run(command: list[str], cwd: Path, what: str) -> None:
    timeout = INSTALL_TIMEOUT_SECONDS if "install" in what else BUILD_TIMEOUT_SECONDS
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise CliError(f"{what} did not finish within {timeout} seconds") from None
    if done.returncode != 0:
        output = (done.stderr.strip() or done.stdout.strip()).splitlines()
        detail = " | ".join(line.strip() for line in output[:12] if line.strip())
        raise CliError(f"{what} failed: {detail or f'exit status {done.returncode}'}")
