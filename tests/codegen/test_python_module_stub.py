"""The typed ctx.db: `spacetime generate --lang python-module` writes `<module>_db.pyi`, and mypy then knows each
table handle, its columns and its indexes (a typo or a wrong key type is an error), while the module still loads
and runs unchanged."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from spacetimedb.module import load_module, package_program
from spacetimedb.testing import TestDatabase

pytestmark = pytest.mark.timeout(240)

TYPED_MODULE = """\
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import spacetimedb
from spacetimedb import PrimaryKey, Range, ReducerContext, Unique, u32

if TYPE_CHECKING:
    from game_db import Db


@spacetimedb.table(public=True, indexes=[spacetimedb.Index.btree("level", "score", name="by_level")])
class Player:
    id: Annotated[u32, PrimaryKey]
    name: Annotated[str, Unique]
    level: int
    score: int


@spacetimedb.reducer
def add(ctx: ReducerContext[Db], name: str) -> None:
    ctx.db.player.insert(Player(id=ctx.db.player.count(), name=name, level=1, score=0))


@spacetimedb.reducer
def rename(ctx: ReducerContext[Db], old: str, new: str) -> None:
    player = ctx.db.player.name.find(old)
    if player is not None:
        player.name = new
        ctx.db.player.id.update(player)


def level_one(ctx: ReducerContext[Db]) -> list[str]:
    return [p.name for p in ctx.db.player.by_level.filter((1, Range(0, 10)))]
"""


def _generate_stub(module: Path) -> None:
    generated = subprocess.run(
        [sys.executable, "-m", "spacetimedb", "generate", "--lang", "python-module", "-p", str(module)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert generated.returncode == 0, generated.stderr


def _project(tmp_path: Path, source: str, name: str = "game") -> Path:
    module = tmp_path / f"{name}.py"
    module.write_text(source, encoding="utf-8")
    _generate_stub(module)
    assert (tmp_path / f"{name}_db.pyi").is_file()
    return module


def _mypy(module: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--cache-dir",
            str(module.parent / ".mypy_cache"),
            module.name,
        ],
        capture_output=True,
        text=True,
        cwd=module.parent,
        timeout=180,
    )


def test_a_module_using_the_typed_context_type_checks_and_still_runs(tmp_path: Path):
    module = _project(tmp_path, TYPED_MODULE)
    checked = _mypy(module)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # the annotation names a type that exists only for type checkers: the module loads and runs as before
    with TestDatabase.load(module) as db:
        db.call("add", "alice")
        db.call("rename", "alice", "bob")
        assert [row.name for row in db.rows("player")] == ["bob"]


@pytest.mark.parametrize(
    ("mistake", "replacement", "reported"),
    [
        ("ctx.db.player.name.find(old)", "ctx.db.palyer.name.find(old)", '"Db" has no attribute "palyer"'),
        (
            "ctx.db.player.name.find(old)",
            "ctx.db.player.name.find(7)",
            'incompatible type "int"; expected "str"',
        ),
        ("ctx.db.player.name.find(old)", "ctx.db.player.nmae.find(old)", 'has no attribute "nmae"'),
        (
            "name=name, level=1",
            'name=name, level="1"',
            'Argument "level" to "Player" has incompatible type "str"',
        ),
        ("ctx.db.player.id.update(player)", "ctx.db.player.id.update(old)", 'expected "Player"'),
    ],
)
def test_mypy_reports_a_wrong_table_index_or_column_type(
    tmp_path: Path, mistake: str, replacement: str, reported: str
):
    assert mistake in TYPED_MODULE
    module = _project(tmp_path, TYPED_MODULE)
    module.write_text(TYPED_MODULE.replace(mistake, replacement), encoding="utf-8")
    checked = _mypy(module)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert reported in checked.stdout, checked.stdout


def test_the_stub_is_regenerated_with_the_module(tmp_path: Path):
    module = _project(tmp_path, TYPED_MODULE)
    module.write_text(
        TYPED_MODULE.replace(
            "    score: int\n", "    score: int\n    team: Annotated[str, spacetimedb.Index.btree]\n"
        ),
        encoding="utf-8",
    )
    _project(tmp_path, module.read_text(encoding="utf-8"))
    stub = (tmp_path / "game_db.pyi").read_text(encoding="utf-8")
    assert "def team(self) -> PlayerTeamIndex: ..." in stub
    assert "def filter(self, value: str | Range) -> Iterator[_m0.Player]: ..." in stub


def test_python_module_needs_a_module_path(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "spacetimedb", "generate", "--lang", "python-module", "some-db"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "give only -p/--module-path" in result.stderr


def test_a_bare_reducer_context_still_loads(tmp_path: Path):
    module = tmp_path / "plain.py"
    module.write_text(TYPED_MODULE.replace("ReducerContext[Db]", "ReducerContext"), encoding="utf-8")
    program, kind = package_program(module)
    loaded = load_module(program, kind, name="plain.py")
    try:
        assert set(loaded.module_def.reducers) >= {"add", "rename"}
    finally:
        loaded.unload()


def _documented_example() -> str:
    text = (Path(__file__).resolve().parents[2] / "docs" / "module-api.md").read_text(encoding="utf-8")
    match = re.search(r"^```python\n# typed: scores\.py\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)
    assert match, "docs/module-api.md lost its `# typed: scores.py` example"
    return match.group(1)


@pytest.mark.parametrize(
    ("mistake", "replacement", "reported"),
    [
        (None, None, None),
        ("ctx.db.player.insert(", "ctx.db.palyer.insert(", '"Db" has no attribute "palyer"; maybe "player"?'),
        ("ctx.db.player.name.find(name)", "ctx.db.player.nick.find(name)", 'has no attribute "nick"'),
        (
            "ctx.db.player.name.find(name)",
            "ctx.db.player.name.find(7)",
            'incompatible type "int"; expected "str"',
        ),
        (
            "Player(id=ctx.db.player.count() + 1, name=name)",
            "Player(id=1, name=1)",
            'incompatible type "int"',
        ),
        ("player.score += points", 'player.score = "x"', "Incompatible types in assignment"),
    ],
)
def test_the_documented_typed_example_checks_and_its_documented_mistakes_are_reported(
    tmp_path: Path, mistake: str | None, replacement: str | None, reported: str | None
):
    source = _documented_example()
    module = _project(tmp_path, source, "scores")
    if mistake is None:
        checked = _mypy(module)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        return
    assert mistake in source and replacement is not None
    module.write_text(source.replace(mistake, replacement), encoding="utf-8")
    checked = _mypy(module)
    assert checked.returncode == 1 and reported in checked.stdout, checked.stdout


def test_a_package_module_gets_its_stub_inside_the_package(tmp_path: Path):
    package = tmp_path / "game"
    package.mkdir()
    (package / "tables.py").write_text(
        "from typing import Annotated\n\nimport spacetimedb\nfrom spacetimedb import Unique\n\n\n"
        "@spacetimedb.table\nclass Player:\n    name: Annotated[str, Unique]\n",
        encoding="utf-8",
    )
    init = (
        "from __future__ import annotations\n\nfrom typing import TYPE_CHECKING\n\nimport spacetimedb\n"
        "from spacetimedb import ReducerContext\n\nfrom .tables import Player\n\n"
        "if TYPE_CHECKING:\n    from ._db import Db\n\n\n@spacetimedb.reducer\n"
        "def add(ctx: ReducerContext[Db], name: str) -> None:\n    ctx.db.player.insert(Player(name=name))\n"
    )
    (package / "__init__.py").write_text(init, encoding="utf-8")
    _generate_stub(package)
    assert "import game.tables as _m0" in (package / "_db.pyi").read_text(encoding="utf-8")
    assert _mypy(package).returncode == 0
    (package / "__init__.py").write_text(
        init.replace("Player(name=name)", "Player(name=1)"), encoding="utf-8"
    )
    checked = _mypy(package)
    assert (
        checked.returncode == 1
        and 'Argument "name" to "Player" has incompatible type "int"' in checked.stdout
    )


def test_records_are_keyword_only_for_type_checkers_as_a_migrated_column_order_needs(tmp_path: Path):
    # `xp` was added by a migration after the defaulted `level`: the runtime makes it keyword-only, and so do
    # type checkers (dataclass_transform(kw_only_default=True)) instead of refusing the class
    module = tmp_path / "heroes.py"
    source = (
        "import spacetimedb\n\n\n@spacetimedb.table\nclass Hero:\n    name: str\n    level: int = 1\n    xp: int\n\n\n"
        "@spacetimedb.type\nclass Point:\n    x: int\n    y: int\n\n\n"
        "hero = Hero(name='a', xp=0)\npoint = Point(x=1, y=2)\n"
    )
    module.write_text(source, encoding="utf-8")
    assert _mypy(module).returncode == 0
    module.write_text(source + "positional = Point(1, 2)\n", encoding="utf-8")
    checked = _mypy(module)
    assert checked.returncode == 1 and "Too many positional arguments" in checked.stdout, checked.stdout


def test_the_stub_names_tables_and_columns_by_their_accessors(tmp_path: Path):
    """ctx.db.<accessor> and the row class's fields are what module code uses; the canonical names
    (@table(name=...), Column(name=...)) are for SQL and clients."""
    source = """\
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from spacetimedb import Column, Index, ReducerContext, reducer, table, u32

if TYPE_CHECKING:
    from league_db import Db


@table(name="players", accessor="player")
class Player:
    score1: Annotated[u32, Column(name="score_1"), Index.btree]


@reducer
def add(ctx: ReducerContext[Db], score: u32) -> None:
    ctx.db.player.insert(Player(score1=score))
    assert list(ctx.db.player.score1.filter(score))
"""
    module = _project(tmp_path, source, "league")
    stub = (tmp_path / "league_db.pyi").read_text()
    assert "def player(self) -> PlayerHandle: ..." in stub and "def players(" not in stub
    assert "def score1(self) -> PlayerScore1Index: ..." in stub
    checked = _mypy(module)
    assert checked.returncode == 0, checked.stdout + checked.stderr
