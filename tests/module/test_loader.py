"""Loading programs: single files and zipped packages, isolation, packaging, hashes, import errors."""

from __future__ import annotations

import io
import os
import shutil
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from spacetimedb.keccak import keccak256
from spacetimedb.module import (
    ModuleError,
    ProgramKind,
    detect_kind,
    load_module,
    package_program,
    program_hash,
)

from .helpers import ALICE, QUICKSTART, Db


def write_package(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


GAME = {
    "__init__.py": """
        from . import reducers
        from .tables import Player
    """,
    "tables.py": """
        from typing import Annotated
        from spacetimedb import table, u32, u64, PrimaryKey, AutoInc

        @table(public=True)
        class Player:
            id: Annotated[u64, PrimaryKey, AutoInc]
            name: str
            level: u32
    """,
    "reducers.py": """
        from spacetimedb import reducer, ReducerContext, u32
        from .tables import Player
        from .util.rules import clamp_level

        @reducer
        def join(ctx: ReducerContext, name: str, level: u32) -> None:
            ctx.db.player.insert(Player(id=0, name=name, level=clamp_level(level)))
    """,
    "util/__init__.py": "",
    "util/rules.py": """
        from ..limits import MAX_LEVEL

        def clamp_level(level: int) -> int:
            return min(level, MAX_LEVEL)
    """,
    "limits.py": "MAX_LEVEL = 10\n",
}


def test_package_with_relative_imports(tmp_path: Path) -> None:
    root = write_package(tmp_path / "game", GAME)
    program, kind = package_program(root)
    assert kind is ProgramKind.PYTHON_PACKAGE and detect_kind(program) is ProgramKind.PYTHON_PACKAGE
    shutil.rmtree(root)  # nothing is read from the publisher's disk after packaging
    loaded = load_module(program, kind)
    assert list(loaded.module_def.tables) == ["player"]
    assert list(loaded.module_def.reducers) == ["join"]
    db = Db(loaded)
    db.call("join", "ann", 50)
    assert db.rows("player") == [(1, "ann", 10)]


def test_single_file_program(tmp_path: Path) -> None:
    program, kind = package_program(QUICKSTART)
    # the file's bytes, then one comment line with its name (for messages and logs)
    assert kind is ProgramKind.PYTHON_SOURCE and program.startswith(QUICKSTART.read_bytes())
    assert program[len(QUICKSTART.read_bytes()) :] == b"# spacetimedb-program-name: quickstart_chat.py\n"
    assert detect_kind(program) is ProgramKind.PYTHON_SOURCE
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(ModuleError, match=r"must be a \.py file"):
        package_program(tmp_path / "notes.txt")
    (tmp_path / "notapkg").mkdir()
    with pytest.raises(ModuleError, match=r"must be a package \(with __init__.py\)"):
        package_program(tmp_path / "notapkg")
    with pytest.raises(ModuleError, match="no such file or directory"):
        package_program(tmp_path / "missing.py")


def test_packaging_is_deterministic(tmp_path: Path) -> None:
    root = write_package(tmp_path / "game", GAME)
    first, _ = package_program(root)
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "tables.cpython-311.pyc").write_bytes(b"junk")
    (root / ".hidden.py").write_text("x = 1\n")
    (root / "notes.txt").write_text("not python\n")
    os.utime(root / "tables.py", (1, 1))
    second, _ = package_program(root)
    assert first == second
    names = zipfile.ZipFile(io.BytesIO(first)).namelist()
    assert names == sorted(names)
    assert names[0] == "game/__init__.py" and "game/util/rules.py" in names
    assert all(
        info.date_time == (1980, 1, 1, 0, 0, 0) for info in zipfile.ZipFile(io.BytesIO(first)).infolist()
    )


def test_program_hash_is_keccak256() -> None:
    assert keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert keccak256(b"abc").hex() == "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"
    # multi-block input (longer than the 136-byte rate)
    assert keccak256(b"a" * 200).hex() == "96ea54061def936c4be90b518992fdc6f12f535068a256229aca54267b4d084d"
    program = QUICKSTART.read_bytes()
    assert program_hash(program) == keccak256(program)
    assert load_module(program).program_hash == keccak256(program)


def test_two_loads_of_same_named_packages_are_isolated(tmp_path: Path) -> None:
    other = dict(GAME)
    other["limits.py"] = "MAX_LEVEL = 99\n"
    first = load_module(package_program(write_package(tmp_path / "a" / "game", GAME))[0])
    second = load_module(package_program(write_package(tmp_path / "b" / "game", other))[0])
    assert first.module_name != second.module_name
    assert first.module_def.table("player").row_class is not second.module_def.table("player").row_class
    db1, db2 = Db(first), Db(second)
    db1.call("join", "x", 50, sender=ALICE)
    db2.call("join", "x", 50, sender=ALICE)
    assert db1.rows("player") == [(1, "x", 10)]
    assert db2.rows("player") == [(1, "x", 50)]
    assert f"{first.module_name}.util.rules" in sys.modules
    first.unload()
    assert not any(n == first.module_name or n.startswith(first.module_name + ".") for n in sys.modules)
    assert f"{second.module_name}.util.rules" in sys.modules
    second.unload()


def _zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, textwrap.dedent(text))
    return buffer.getvalue()


def test_syntax_error_names_file_and_line() -> None:
    broken = dict(GAME)
    broken["reducers.py"] = "from spacetimedb import reducer\n\ndef oops(:\n    pass\n"
    with pytest.raises(ModuleError) as caught:
        load_module(_zip({f"game/{k}": v for k, v in broken.items()}))
    message = str(caught.value)
    assert message.startswith("game/reducers.py:3: SyntaxError:"), message
    assert "def oops(:" in message


def test_import_errors_name_file_and_line() -> None:
    broken = dict(GAME)
    broken["util/rules.py"] = "from ..nowhere import MAX_LEVEL\n"
    with pytest.raises(ModuleError) as caught:
        load_module(_zip({f"game/{k}": v for k, v in broken.items()}))
    assert str(caught.value).startswith(
        "game/util/rules.py:1: error while importing the module: ModuleNotFoundError:"
    ), str(caught.value)
    with pytest.raises(ModuleError, match=r"^bad.py:3: error while importing the module: ZeroDivisionError"):
        load_module(b"import math\n\nx = 1 / 0\n", name="bad.py")
    with pytest.raises(ModuleError, match="error while importing the module: SystemExit"):
        load_module(b"raise SystemExit(3)\n")


def test_failed_load_leaves_nothing_behind() -> None:
    before = set(sys.modules)
    with pytest.raises(ModuleError):
        load_module(b"import spacetimedb\nraise RuntimeError('no')\n")
    assert {n for n in set(sys.modules) - before if n.startswith("_stdb_module_")} == set()


def test_bad_zips() -> None:
    with pytest.raises(ModuleError, match="not a valid zip file"):
        load_module(b"PK\x03\x04garbage", ProgramKind.PYTHON_PACKAGE)
    with pytest.raises(ModuleError, match="exactly one package directory"):
        load_module(_zip({"a/x.py": "", "b/y.py": ""}))
    with pytest.raises(ModuleError, match="unsafe path"):
        load_module(_zip({"../evil.py": "", "pkg/__init__.py": ""}))
    # a zip of a package's contents (no top directory) works too
    loaded = load_module(_zip({"__init__.py": "from .t import *\n", "t.py": GAME["tables.py"]}))
    assert list(loaded.module_def.tables) == ["player"]


def test_concurrent_loads_keep_their_declarations_apart() -> None:
    import threading

    results: dict[int, list[str]] = {}

    def load(n: int) -> None:
        source = f"""
from typing import Annotated
from spacetimedb import table, u32, PrimaryKey
import time

@table
class First{n}:
    id: Annotated[u32, PrimaryKey]

time.sleep(0.02)  # interleave with the other thread's declarations

@table
class Second{n}:
    id: Annotated[u32, PrimaryKey]
"""
        results[n] = list(load_module(source.encode()).module_def.tables)

    threads = [threading.Thread(target=load, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {n: [f"first{n}", f"second{n}"] for n in range(4)}


def test_a_single_file_program_carries_its_name_without_moving_a_line(tmp_path) -> None:
    from spacetimedb.module.loader import program_name, with_program_name

    source = tmp_path / "loop.py"
    source.write_text("from spacetimedb import reducer\nx = 1")  # no final newline
    program, _ = package_program(source)
    assert program.splitlines()[:2] == [b"from spacetimedb import reducer", b"x = 1"]
    assert program_name(program) == "loop.py"
    assert program_name(with_program_name(program, "other.py")) == "other.py"  # replaced, not stacked
    assert with_program_name(program, "other.py").count(b"spacetimedb-program-name") == 1
    assert program_name(with_program_name(b"x = 1\n", "../../etc/passwd")) is None  # not a plain file name
    loaded = load_module(program)
    try:
        assert loaded.module_def is not None
    finally:
        loaded.unload()
