"""``spacetime generate --lang python-module``: a type stub of a module's own ``ctx.db``, for editors and mypy.

For ``module.py`` it writes ``module_db.pyi`` beside it (for a package ``pkg/``, ``pkg/_db.pyi``): a ``Db`` class
with one read-only attribute per table, each table's handle class (``insert``, ``delete``, ``iter``, ``count``
and one attribute per index, typed with the row class and the key columns' own annotations), and
``Ctx = ReducerContext[Db]``. The module imports it for type checkers only::

    from typing import TYPE_CHECKING
    if TYPE_CHECKING:
        from module_db import Ctx

    @spacetimedb.reducer
    def add(ctx: Ctx, name: str) -> None: ...

The stub names the row classes by importing the module itself, so it stays right as long as it is regenerated
after a table or an index changes (``spacetime dev`` does so on every change).
"""

from __future__ import annotations

import os
import types
import typing
from pathlib import Path
from typing import Any

from spacetimedb.codegen.python import AUTO_GENERATED_PREFIX

STUB_SUFFIX = "_db.pyi"
PACKAGE_STUB = "_db.pyi"


def stub_path_for(module_path: str | os.PathLike[str], out_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where the stub of the module at ``module_path`` goes: beside a module file, inside a package."""
    path = Path(module_path)
    if path.is_dir():
        return Path(out_dir or path) / PACKAGE_STUB
    return Path(out_dir or path.parent) / (path.stem + STUB_SUFFIX)


def module_stub(module_path: str | os.PathLike[str]) -> str:
    """The stub's text. Raises ``spacetimedb.module.ModuleError`` for an invalid module."""
    from spacetimedb.module import load_module, package_program

    path = Path(module_path)
    program, kind = package_program(path)
    loaded = load_module(program, kind, name=path.name if path.is_file() else "__init__.py")
    try:
        importable = path.name if path.is_dir() else path.stem
        return _StubWriter(loaded.module_name, importable).render(loaded.module_def, path.name)
    finally:
        loaded.unload()


def write_module_stub(
    module_path: str | os.PathLike[str], out_dir: str | os.PathLike[str] | None = None
) -> Path:
    """Write the stub of the module (see :func:`stub_path_for`); returns its path."""
    target = stub_path_for(module_path, out_dir)
    text = module_stub(module_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target


class _StubWriter:
    def __init__(self, loaded_name: str, importable_name: str) -> None:
        self.loaded_name = loaded_name  # the module's unique name in sys.modules while it was loaded
        self.importable_name = (
            importable_name  # how type checkers import it: the file's stem, the package's name
        )
        self.imports: dict[str, str] = {}  # module -> alias

    def render(self, module_def: Any, shown_name: str) -> str:
        classes: list[str] = []
        db_lines: list[str] = []
        for table in module_def.tables.values():
            accessor = table.accessor_name  # ctx.db.<accessor>, which @table(accessor=...) may set
            handle = f"{_camel(accessor)}Handle"
            classes.extend(self._table_classes(table, handle))
            db_lines += ["    @property", f"    def {accessor}(self) -> {handle}: ..."]
        lines = [
            f"{AUTO_GENERATED_PREFIX}. EDITS TO THIS FILE WILL NOT BE KEPT.",
            f'"""The types of ctx.db of {shown_name}, for editors and type checkers: regenerate with',
            f'`spacetime generate --lang python-module -p {shown_name}` (`spacetime dev` does it on every change)."""',
            "",
            "from collections.abc import Iterator",
            "from typing import TypeAlias",
            "",
            "from spacetimedb import Range, ReducerContext",
            *(f"import {module} as {alias}" for module, alias in sorted(self.imports.items())),
            "",
            *classes,
            "",
            "class Db:",
            *(db_lines or ["    pass"]),
            "",
            "Ctx: TypeAlias = ReducerContext[Db]",
            "",
        ]
        return "\n".join(lines)

    def _table_classes(self, table: Any, handle: str) -> list[str]:
        row = self._spell(table.row_class)
        hints = typing.get_type_hints(table.row_class)
        fields = [c.accessor_name for c in table.columns]  # the row class's attributes
        column_types = [self._spell(hints[f]) if f in hints else "object" for f in fields]
        out: list[str] = []
        accessors: list[str] = []
        for index in table.indexes:
            index_class = f"{handle.removesuffix('Handle')}{_camel(index.accessor_name)}Index"
            keys = [column_types[c] for c in index.columns]
            out += ["", f"class {index_class}:"]
            if index.unique and len(keys) == 1:
                key = keys[0]
                out += [
                    f"    def find(self, value: {key}) -> {row} | None: ...",
                    f"    def filter(self, value: {_key_or_range(key)}) -> Iterator[{row}]: ...",
                    f"    def update(self, row: {row}) -> {row}: ...",
                    f"    def delete(self, value: {_key_or_range(key)}) -> bool: ...",
                ]
            else:
                value = _prefix_filter(keys)
                out += [
                    f"    def filter(self, value: {value}) -> Iterator[{row}]: ...",
                    f"    def delete(self, value: {value}) -> int: ...",
                ]
            accessors += ["    @property", f"    def {index.accessor_name}(self) -> {index_class}: ..."]
        out += [
            "",
            f"class {handle}:",
            *accessors,
            f"    def insert(self, row: {row}) -> {row}: ...",
            f"    def delete(self, row: {row}) -> bool: ...",
            f"    def iter(self) -> Iterator[{row}]: ...",
            f"    def __iter__(self) -> Iterator[{row}]: ...",
            "    def count(self) -> int: ...",
        ]
        return out

    def _spell(self, annotation: Any) -> str:
        """An annotation as stub source; names outside builtins through an aliased module import."""
        if annotation is None or annotation is type(None):
            return "None"
        origin = typing.get_origin(annotation)
        if origin is typing.Union or origin is types.UnionType:
            return " | ".join(self._spell(arg) for arg in typing.get_args(annotation))
        if origin is typing.Annotated:
            return self._spell(typing.get_args(annotation)[0])
        if origin is not None:
            args = typing.get_args(annotation)
            base = self._spell(origin)
            return f"{base}[{', '.join(self._spell(a) for a in args)}]" if args else base
        if isinstance(annotation, type):
            if annotation.__module__ == "builtins":
                return annotation.__qualname__
            return f"{self._alias(annotation.__module__)}.{annotation.__qualname__}"
        return "object"  # a spelling this writer does not know: accepted by the checker, never wrong

    def _alias(self, module: str) -> str:
        if module == self.loaded_name or module.startswith(self.loaded_name + "."):
            module = self.importable_name + module[len(self.loaded_name) :]
        return self.imports.setdefault(module, f"_m{len(self.imports)}")


def _key_or_range(key: str) -> str:
    return f"{key} | Range | range" if key == "int" else f"{key} | Range"


def _prefix_filter(keys: list[str]) -> str:
    """A multi-column index's filter value: a first value or range, or a tuple prefix ending in a value or
    a range."""
    options = [_key_or_range(keys[0])]
    for length in range(1, len(keys) + 1) if len(keys) > 1 else ():
        *head, last = keys[:length]
        options.append(f"tuple[{', '.join([*head, f'{_key_or_range(last)}'])}]")
    return " | ".join(options)


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))
