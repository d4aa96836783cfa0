"""examples/web-chat in a real browser: Debian's headless Chromium, driven by playwright-core.

The example is copied as a user would have it, its bindings made with the real ``spacetime generate --lang
typescript`` command, type-checked (strict), and served by Vite's dev server on another origin (another port)
than the database server, which runs the quickstart chat. Two pages, each in its own browser context, set a name
and send messages and see each other's live; one reloads and keeps its identity and name (its token is in
localStorage). Screenshots of both pages are saved under the test's tmp dir and their paths printed.

The npm packages are the example's own pins plus playwright-core, installed once into the npm cache (see
node_tools); Chromium is installed with apt-get where missing and this user may (root). Skipped, saying why,
where Node, npm or Chromium cannot be had.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from .helpers import CHAT_MODULE, ROOT, publish
from .node_tools import INSTALL_TIMEOUT_SECONDS, NodeTools, _cache_root, node_tools

pytestmark = [pytest.mark.node, pytest.mark.slow]

EXAMPLE = ROOT / "examples" / "web-chat"
SCENARIO = Path(__file__).parent / "node" / "web_chat_browser.mjs"
PLAYWRIGHT = "playwright-core@1.65.2"
CHROMIUM_NAMES = ("chromium", "chromium-browser")
VITE_START_SECONDS = 60


def example_packages() -> tuple[str, ...]:
    """The example's pinned dependencies (its package.json is the one place they are named) and playwright-core."""
    manifest = json.loads((EXAMPLE / "package.json").read_text())
    pins = {**manifest["dependencies"], **manifest["devDependencies"]}
    return (*(f"{name}@{version}" for name, version in sorted(pins.items())), PLAYWRIGHT)


def chromium() -> str:
    """Debian's Chromium, installed with apt-get when missing and this user is root; else the test is skipped."""
    found = _find_chromium()
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip(
            "the browser test needs Chromium (Debian: apt-get install chromium); it is not installed "
            "and this user cannot install it"
        )
    lock_path = _cache_root() / "chromium-install.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test workers install once
        if not _find_chromium():
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            for step in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
                result = subprocess.run(
                    step, capture_output=True, text=True, env=env, timeout=INSTALL_TIMEOUT_SECONDS
                )
                if result.returncode != 0:
                    pytest.skip(
                        f"the browser test needs Chromium; `{' '.join(step)}` failed: "
                        f"{result.stderr.strip()[-500:]}"
                    )
    found = _find_chromium()
    if not found:
        pytest.skip("the browser test needs Chromium; apt-get installed no chromium executable")
    return found


def _find_chromium() -> str | None:
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(args: list[str], cwd: Path, timeout: float = 120) -> str:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _prepare_example(tools: NodeTools, work: Path) -> None:
    """The example as a user has it after ``spacetime generate`` and ``npm install``, type-checked."""
    shutil.copytree(EXAMPLE, work, ignore=shutil.ignore_patterns("node_modules", "dist", "module_bindings"))
    (work / "node_modules").symlink_to(tools.node_modules, target_is_directory=True)
    spacetime = [sys.executable, "-m", "spacetimedb.cli.main"]
    _run(
        [
            *spacetime,
            "generate",
            "--lang",
            "typescript",
            "--out-dir",
            "src/module_bindings",
            "--module-path",
            str(CHAT_MODULE),
        ],
        work,
    )
    _run([tools.bin("tsc"), "-p", "tsconfig.json"], work)
    # the shared node_modules is a symlink out of the project: Vite may serve from there, and keeps its own
    # cache in the test's directory rather than in the shared one
    (work / "vite.test.config.mjs").write_text(
        "export default "
        + json.dumps(
            {
                "cacheDir": str(work / ".vite-cache"),
                "clearScreen": False,
                "server": {"fs": {"allow": [str(work), str(tools.node_modules.resolve())]}},
            }
        )
        + ";\n"
    )


def _start_vite(tools: NodeTools, work: Path, server_url: str) -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    env = dict(
        os.environ, VITE_SPACETIMEDB_URI=server_url, VITE_SPACETIMEDB_DATABASE="quickstart-chat", NO_COLOR="1"
    )
    vite = subprocess.Popen(
        [
            tools.node,
            tools.bin("vite"),
            "--config",
            "vite.test.config.mjs",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--strictPort",
        ],
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + VITE_START_SECONDS
    while time.monotonic() < deadline and vite.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return vite, url
        except OSError:
            time.sleep(0.2)
    vite.kill()
    output = vite.communicate(timeout=10)[0]
    raise AssertionError(f"Vite's dev server did not answer on {url}:\n{output}")


def _events(output: str) -> dict[str, dict[str, Any]]:
    return {e["event"]: e for e in (json.loads(line) for line in output.splitlines() if line.startswith("{"))}


def test_two_browser_pages_chat_live_and_a_reload_keeps_the_identity(server, tmp_path: Path) -> None:
    tools = node_tools(example_packages(), "the browser test")
    browser = chromium()
    started = time.monotonic()
    publish(server.url, "quickstart-chat")
    work = tmp_path / "web-chat"
    _prepare_example(tools, work)
    vite, page_url = _start_vite(tools, work, server.url)
    assert page_url.rsplit(":", 1)[1] != server.url.rsplit(":", 1)[1]  # another origin than the server
    shots = tmp_path / "screenshots"
    shots.mkdir()
    shutil.copy(SCENARIO, work / SCENARIO.name)  # beside node_modules, where its import resolves
    try:
        scenario = subprocess.run(
            [tools.node, SCENARIO.name, browser, page_url, str(shots)],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=180,
        )
    finally:
        vite.terminate()
        vite_output = vite.communicate(timeout=20)[0]
    events = _events(scenario.stdout)
    context = f"\n{scenario.stdout}\n{scenario.stderr[-4000:]}\nvite:\n{vite_output[-3000:]}"
    assert scenario.returncode == 0 and events["done"]["failures"] == [], context

    ada, bob = events["connected"]["ada"], events["connected"]["bob"]
    assert len(ada) == len(bob) == 64 and ada != bob
    both = [["Ada", "Hello Bob, from Ada"], ["Bob", "Hi Ada! Bob here"]]
    assert events["exchanged"]["ada"] == both and events["exchanged"]["bob"] == both, context
    reloaded = events["reloaded"]
    assert reloaded["identity"] == ada and reloaded["status"] == "Connected as Ada"
    assert reloaded["ada"] == reloaded["bob"] == [*both, ["Ada", "Back after a reload"]]
    for who in ("ada", "bob"):
        path = events["screenshots"][who]
        assert Path(path).stat().st_size > 5_000  # a rendered page, not an empty image
        print(f"screenshot: {path}")
    print(f"browser scenario took {time.monotonic() - started:.1f}s")
