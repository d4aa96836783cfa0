"""The data directory a running server creates is the one docs/architecture.md describes ("On disk").

The test reads the layout from the document itself (one name per line, two spaces of indent per level,
``{placeholders}`` for generated names, "(sometimes)" for entries only some runs leave), so that the document
cannot drift from the code without this test failing: every file the server made must be documented, and every
entry not marked "(sometimes)" must exist.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from .test_e2e import publish

ARCHITECTURE = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"

PLACEHOLDERS = {
    "{offset}": r"\d{20}",
    "{identity}": r"[0-9a-f]{64}",
    "{work}": r"\.[a-z]+-[0-9a-f]{64}-[0-9a-z]+",
}


@dataclass
class Entry:
    name: str  # as documented, e.g. "{offset}.stdb.log"
    is_dir: bool
    sometimes: bool
    children: list[Entry] = field(default_factory=list)

    def matches(self, path: Path) -> bool:
        pattern = re.escape(self.name)
        for placeholder, regex in PLACEHOLDERS.items():
            pattern = pattern.replace(re.escape(placeholder), regex)
        return path.is_dir() == self.is_dir and re.fullmatch(pattern, path.name) is not None


def documented_layout() -> Entry:
    """The tree in the code block of the "On disk" section."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text[text.index("## On disk") :]
    block = section[section.index("```\n") + 4 :]
    block = block[: block.index("```")]
    lines = [line for line in block.splitlines() if line.strip()]
    root = Entry(lines[0].split()[0].rstrip("/"), True, False)
    stack: list[tuple[int, Entry]] = [(0, root)]
    for line in lines[1:]:
        depth = (len(line) - len(line.lstrip(" "))) // 2
        name, _, description = line.strip().partition(" ")
        entry = Entry(name.rstrip("/"), name.endswith("/"), description.strip().startswith("(sometimes)"))
        while stack[-1][0] >= depth:
            stack.pop()
        stack[-1][1].children.append(entry)
        stack.append((depth, entry))
    return root


def differences(documented: Entry, directory: Path, shown: str) -> list[str]:
    """What the server made that the document does not name, and what it names that the server did not make."""
    found: list[str] = []
    actual = sorted(directory.iterdir())
    for path in actual:
        entry = next((e for e in documented.children if e.matches(path)), None)
        if entry is None:
            found.append(f"undocumented: {shown}/{path.name}{'/' if path.is_dir() else ''}")
        elif entry.is_dir:
            found += differences(entry, path, f"{shown}/{path.name}")
    for entry in documented.children:
        if not entry.sometimes and not any(entry.matches(path) for path in actual):
            found.append(f"missing: {shown}/{entry.name}{'/' if entry.is_dir else ''}")
    return found


def test_the_layout_block_is_parsed_as_a_tree() -> None:
    root = documented_layout()
    names = [entry.name for entry in root.children]
    assert names[:3] == ["server.lock", "config.toml", "keys"]
    databases = next(entry for entry in root.children if entry.name == "databases")
    assert [entry.name for entry in databases.children] == ["{identity}", "{work}"]


@pytest.mark.slow
def test_a_running_server_creates_the_documented_layout(server) -> None:
    async def scenario() -> None:
        async with aiohttp.ClientSession() as http:
            token = await publish(http, server.url)
            response = await http.post(
                f"{server.url}/v1/database/chat/call/send_message",
                json=["hello"],
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status == 200, await response.text()

    asyncio.run(scenario())
    assert server.stop() == 0
    assert server.data_dir is not None
    assert differences(documented_layout(), server.data_dir, "{data_dir}") == []
