"""Upstream's cluster/quickstart.rs: the chat quickstart end to end (publish the module, generate the client's
bindings, run the client with its input piped in: it connects, renames its user, sends a message). Our quickstart
is Python on both sides: examples/chat/quickstart_chat.py and examples/chat/client.py, as its README runs them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_e2e.conftest import QUICKSTART, User
from tests.conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

CLIENT = ROOT / "examples" / "chat" / "client.py"

NOT_APPLICABLE = {
    "test_quickstart_csharp": "C# module and C# client built with dotnet (another module language)",
    "test_quickstart_typescript": "its subject is the quickstart's TypeScript server module, built with pnpm "
    "against upstream's TypeScript bindings (another module language; the Rust client it drives is upstream's "
    "SDK)",
    "test_quickstart_cpp": "C++ module built with emscripten (another module language)",
}


def test_quickstart_rust(alice: User, tmp_path: Path) -> None:
    """Upstream test_quickstart_rust, with our Python quickstart in place of the Rust one: `publish --yes
    --delete-data` the module, `generate` the client's bindings, then run the client three times with its input
    piped in: it connects; `/name Alice` renames its user; `Hello World` is sent and seen."""
    database = "quickstart-chat-python"
    published = alice("publish", "--yes", "--delete-data", database, "-p", str(QUICKSTART))
    assert published.code == 0, published
    assert "identity: " in published.out

    client_dir = tmp_path / "client"
    client_dir.mkdir()
    shutil.copy(CLIENT, client_dir / "client.py")
    generated = alice(
        "generate", "--lang", "python", "--out-dir", str(client_dir / "module_bindings"), "-p", str(QUICKSTART),
        server=False,
    )  # fmt: skip
    assert generated.code == 0, generated

    def run_client(stdin: str) -> str:
        done = subprocess.run(
            [sys.executable, str(client_dir / "client.py"), "--server", alice.url, "--database", database],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "SPACETIMEDB_CLIENT_CREDENTIALS_DIR": str(tmp_path / "credentials")},
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "connected" in run_client("")
    assert "Alice" in run_client("/name Alice\n")
    assert "Hello World" in run_client("Hello World\n")
