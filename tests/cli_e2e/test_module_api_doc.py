"""docs/module-api.md, followed verbatim: every example module is published to a real server and every command of
its console blocks is run against it, its output compared line by line, so the reference cannot drift from the
code.

The page's conventions (it states them too):
- a ```python block whose first line is ``# module: NAME`` is a complete module, saved as ``NAME.py``;
- a ```console block lists commands: ``$ spacetime ...`` runs as the database's owner, ``bob$ spacetime ...`` as
  another user; the lines after a command are what it prints (standard output, then standard error), where
  ``...`` stands for any text within one line (times, identities).
- a ```python block whose first line is ``# test: FILE.py`` is a pytest file, run in a directory holding every
  example module shown before it (the last version of each).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.cli_e2e.conftest import User
from tests.conftest import ROOT, ServerProcess

DOC = ROOT / "docs" / "module-api.md"
DEFAULT_SERVER = "http://127.0.0.1:3000"  # where `spacetime start` listens, as the page's outputs show it
FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
PROMPTS = {"$ ": "owner", "bob$ ": "bob"}


@dataclass
class Command:
    user: str
    argv: list[str]
    expected: list[str] = field(default_factory=list)


@dataclass
class Example:
    """One ``# module:`` block and the console blocks after it (up to the next module)."""

    name: str
    source: str
    commands: list[Command] = field(default_factory=list)


@dataclass
class DocTest:
    """One ``# test:`` block and the modules shown before it."""

    filename: str
    source: str
    modules: dict[str, str]


def examples(text: str) -> tuple[list[Example], list[DocTest]]:
    found: list[Example] = []
    tests: list[DocTest] = []
    for match in FENCE.finditer(text):
        lang, body = match.group(1), match.group(2)
        first = body.partition("\n")[0]
        if lang == "python" and first.startswith("# module: "):
            found.append(Example(first.removeprefix("# module: ").strip(), body))
        elif lang == "python" and first.startswith("# test: "):
            modules = {f"{example.name}.py": example.source for example in found}
            tests.append(DocTest(first.removeprefix("# test: ").strip(), body, modules))
        elif lang == "console":
            assert found, "a console block before any module"
            found[-1].commands.extend(commands(body))
    return found, tests


def commands(body: str) -> list[Command]:
    parsed: list[Command] = []
    for line in body.splitlines():
        prompt = next((p for p in PROMPTS if line.startswith(p)), None)
        if prompt is not None:
            argv = shlex.split(line.removeprefix(prompt))
            assert argv[0] == "spacetime", line
            parsed.append(Command(PROMPTS[prompt], argv[1:]))
        else:
            assert parsed, f"output before any command: {line!r}"
            parsed[-1].expected.append(line)
    return parsed


def matches(expected: str, actual: str) -> bool:
    pattern = ".*".join(re.escape(part) for part in expected.split("..."))
    return re.fullmatch(pattern, actual) is not None


def printed(result_out: str, result_err: str, url: str) -> list[str]:
    lines = (result_out + result_err).replace(url, DEFAULT_SERVER).splitlines()
    # a user's first command against a server saves their identity and says so: not part of the examples
    return [line for line in lines if not line.startswith("saved a new identity")]


EXAMPLES, DOC_TESTS = examples(DOC.read_text(encoding="utf-8"))


def test_the_page_has_checked_examples():
    assert len(EXAMPLES) >= 4
    assert DOC_TESTS
    assert all(example.commands for example in EXAMPLES if example.name != "scheduled")


@pytest.fixture(scope="module")
def users(tmp_path_factory: pytest.TempPathFactory, shared_server: ServerProcess) -> dict[str, User]:
    """The page's two users, the same for all its examples (a later example may update an earlier database)."""
    home = tmp_path_factory.mktemp("users")
    return {name: User(home / name, shared_server.url) for name in ("owner", "bob")}


@pytest.fixture(scope="module")
def examples_run() -> set[str]:
    """The examples this process has run against its server (pytest-xdist may hand the examples of this page to
    different processes, each with its own server, while a later example uses an earlier one's database)."""
    return set()


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"{i}-{e.name}" for i, e in enumerate(EXAMPLES)])
def test_example_runs_as_documented(
    example: Example,
    tmp_path: Path,
    shared_server: ServerProcess,
    users: dict[str, User],
    examples_run: set[str],
):
    for earlier in EXAMPLES[: EXAMPLES.index(example)]:
        if earlier.name not in examples_run:
            directory = tmp_path / f"earlier-{earlier.name}"
            directory.mkdir()
            run_example(earlier, directory, shared_server, users)
            examples_run.add(earlier.name)
    run_example(example, tmp_path, shared_server, users)
    examples_run.add(example.name)


def run_example(
    example: Example, tmp_path: Path, shared_server: ServerProcess, users: dict[str, User]
) -> None:
    """Save the example's module in ``tmp_path`` and run its commands, checking what each prints."""
    (tmp_path / f"{example.name}.py").write_text(example.source, encoding="utf-8")
    commands = example.commands or [Command("owner", ["publish", example.name, "-p", f"{example.name}.py"])]
    for command in commands:
        result = users[command.user](*command.argv, cwd=tmp_path)
        actual = printed(result.out, result.err, shared_server.url)
        where = f"`spacetime {shlex.join(command.argv)}` printed:\n" + "\n".join(actual)
        if command.expected:
            assert len(actual) == len(command.expected), where
            for want, got in zip(command.expected, actual, strict=True):
                assert matches(want, got), f"{where}\nexpected the line: {want}"
        else:
            assert actual == [], where


@pytest.mark.parametrize("doc_test", DOC_TESTS, ids=[t.filename for t in DOC_TESTS])
def test_doc_test_passes(doc_test: DocTest, tmp_path: Path):
    for filename, source in doc_test.modules.items():
        (tmp_path / filename).write_text(source, encoding="utf-8")
    (tmp_path / doc_test.filename).write_text(doc_test.source, encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", doc_test.filename],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert " passed" in run.stdout and "skipped" not in run.stdout, run.stdout
