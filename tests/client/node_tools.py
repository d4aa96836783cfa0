"""The Node.js side of the TypeScript SDK test: the npm packages, installed once into a cache directory.

The packages (the official SDK at a pinned version, esbuild to bundle the TypeScript scenario with the generated
bindings, TypeScript to type-check them) go to ``$SPACETIMEDB_NPM_CACHE`` or ``~/.cache/spacetimedb-py/npm``,
in a directory named after the exact package list, so a warm cache makes the test fast and a version bump
installs afresh. Nothing is installed in the repository.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

SDK_VERSION = "2.10.1"
NPM_PACKAGES = (
    f"spacetimedb@{SDK_VERSION}",
    "esbuild@0.25.12",
    "typescript@5.9.3",
    "@types/node@20.19.43",
)
INSTALL_TIMEOUT_SECONDS = 600


@dataclass(frozen=True)
class NodeTools:
    node: str
    node_modules: Path
    node_flags: tuple[str, ...]  # e.g. --experimental-websocket where WebSocket is not global yet

    def bin(self, name: str) -> str:
        return str(self.node_modules / ".bin" / name)


def _cache_root() -> Path:
    configured = os.environ.get("SPACETIMEDB_NPM_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "spacetimedb-py" / "npm"


def _node_major(node: str) -> int:
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    match = re.match(r"v(\d+)\.(\d+)", version)
    return int(match.group(1)) if match else 0


def node_tools(
    packages: tuple[str, ...] = NPM_PACKAGES, purpose: str = "the TypeScript SDK test"
) -> NodeTools:
    """The toolchain with ``packages`` installed (on first use, into a cache directory named after the exact
    list); skips the test, naming ``purpose``, when Node or npm is absent."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip(f"{purpose} needs Node.js (>= 20) and npm on PATH; neither was found")
    major = _node_major(node)
    if major < 20:
        pytest.skip(f"{purpose} needs Node.js >= 20 (found major version {major})")
    key = hashlib.sha256(" ".join(packages).encode()).hexdigest()[:16]
    label = "sdk" if packages == NPM_PACKAGES else "pkgs"
    directory = _cache_root() / f"{label}-{SDK_VERSION}-{key}"
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test workers install once
        if not (directory / ".complete").exists():
            (directory / "package.json").write_text(
                '{"name": "stdb-sdk-test", "private": true, "type": "module"}\n'
            )
            subprocess.run(
                [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", *packages],
                cwd=directory,
                check=True,
                timeout=INSTALL_TIMEOUT_SECONDS,
            )
            (directory / ".complete").write_text(" ".join(packages) + "\n")
    flags = ("--experimental-websocket",) if major < 22 else ()
    return NodeTools(node, directory / "node_modules", flags)
