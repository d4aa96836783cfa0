"""Loading module programs: bytes in, a validated ``ModuleDef`` and its callables out.

A program is either one ``.py`` source file or a zip of a package directory (``pkg/__init__.py``,
``pkg/sub.py``, ...; relative imports work). Every load is isolated: its modules live in ``sys.modules`` under a
fresh top-level name (``_stdb_module_<n>``), are imported by a finder that only knows that program's files, and
never read the publisher's disk. So two databases can load programs with the same file or package names.

Inside module code ``print`` goes to the module log (``log.module_print``).

A single file carries its own name, so that the server's messages and logs say ``loop.py:15``, not a made-up
``module.py``: ``package_program`` appends one comment line, ``# spacetimedb-program-name: loop.py``, after the
source (so no line number moves), and ``load_module`` shows the file under that name.
"""

from __future__ import annotations

import enum
import importlib
import importlib.abc
import importlib.machinery
import io
import linecache
import lzma
import os
import re
import struct
import sys
import threading
import traceback
import types
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spacetimedb.keccak import keccak256

from .api import Registry, activate_registry, deactivate_registry
from .builder import build_module_def
from .errors import ModuleError
from .log import module_print, register_display_name
from .moduledef import ModuleDef

_MAX_PROGRAM_BYTES = 64 * 1024 * 1024
_NAME_MARKER = b"# spacetimedb-program-name: "
# a plain file name: what may be shown in messages and logs as a program's name
_PROGRAM_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,100}\.py")
_ZIP_MAGIC = b"PK\x03\x04"
# zip entries carry this timestamp so that packaging the same sources always gives the same bytes
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_READABLE_METHODS = {
    zipfile.ZIP_STORED: "stored",
    zipfile.ZIP_DEFLATED: "deflate",
    zipfile.ZIP_BZIP2: "bzip2",
    zipfile.ZIP_LZMA: "lzma",
}
_ZIP_ENCRYPTED_FLAG = 0x1
# what zipfile raises for an archive it cannot read: a bad CRC, a corrupt compressed stream, a feature or
# version it does not implement, a password needed, sizes or offsets that lie, names that are not UTF-8
_UNREADABLE_ZIP = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    NotImplementedError,
    RuntimeError,
    EOFError,
    ValueError,
    OSError,
    struct.error,
)


class ProgramKind(enum.IntEnum):
    """What the program bytes are; the value is what ``st_module.program_kind`` stores (0 and 1 are
    SpacetimeDB's wasm and js)."""

    WASM = 0  # a WebAssembly module built by SpacetimeDB's Rust or C# toolchain
    JS = 1  # a JavaScript bundle built from a TypeScript module (``spacetime build``)
    PYTHON_SOURCE = 2  # one .py file
    PYTHON_PACKAGE = 3  # a zip of a package directory


_WASM_MAGIC = b"\0asm"
# what every bundle of a TypeScript module imports: the host's syscall module
_JS_SYS_IMPORT = re.compile(rb"""from\s*["']spacetime:sys@""")

ForeignLoader = Callable[[bytes, "ProgramKind"], "LoadedModule"]
# the engines that load programs of other languages, by kind; the host registers them (``host.foreign``)
_FOREIGN_LOADERS: dict[ProgramKind, ForeignLoader] = {}


def register_foreign_loader(kind: ProgramKind, loader: ForeignLoader) -> None:
    """Load programs of ``kind`` (WASM or JS) with ``loader(program, kind)``."""
    _FOREIGN_LOADERS[kind] = loader


def program_hash(program: bytes) -> bytes:
    """The 32-byte Keccak-256 hash of a program (``st_module.program_hash``)."""
    return keccak256(program)


def detect_kind(program: bytes) -> ProgramKind:
    if program[:4] == _WASM_MAGIC:
        return ProgramKind.WASM
    if program[:4] == _ZIP_MAGIC:
        return ProgramKind.PYTHON_PACKAGE
    if _JS_SYS_IMPORT.search(program) is not None and not _is_python(program):
        return ProgramKind.JS
    return ProgramKind.PYTHON_SOURCE


def _is_python(program: bytes) -> bool:
    try:
        compile(program, "<program>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True


# ---- packaging (CLI side) ------------------------------------------------------------------------------------


def package_program(path: str | os.PathLike[str]) -> tuple[bytes, ProgramKind]:
    """The program bytes to upload for a ``.py`` file or a package directory (one with ``__init__.py``).

    A package becomes a deterministic zip of its ``.py`` files: entries sorted, fixed timestamps and
    permissions, ``__pycache__`` and hidden files skipped.
    """
    source = Path(path)
    if source.is_file():
        if source.suffix != ".py":
            raise ModuleError(f"{source}: a module file must be a .py file")
        return with_program_name(source.read_bytes(), source.name), ProgramKind.PYTHON_SOURCE
    if source.is_dir():
        if not (source / "__init__.py").is_file():
            raise ModuleError(f"{source}: a module directory must be a package (with __init__.py)")
        return _zip_package(source), ProgramKind.PYTHON_PACKAGE
    raise ModuleError(f"{source}: no such file or directory")


def with_program_name(source: bytes, name: str) -> bytes:
    """``source`` with its file name recorded in a last comment line (replacing one already there); a name that
    is not a plain ``.py`` file name is not recorded."""
    source = _split_program_name(source)[0]
    if _PROGRAM_NAME.fullmatch(name) is None:
        return source
    if source and not source.endswith(b"\n"):
        source += b"\n"
    return source + _NAME_MARKER + name.encode() + b"\n"


def _split_program_name(source: bytes) -> tuple[bytes, str | None]:
    """(the source without its name line, the recorded name or None)."""
    body = source[:-1] if source.endswith(b"\n") else source
    start = body.rfind(b"\n") + 1
    last = body[start:]
    if not last.startswith(_NAME_MARKER):
        return source, None
    name = last[len(_NAME_MARKER) :].decode("utf-8", "replace").strip()
    if _PROGRAM_NAME.fullmatch(name) is None:
        return source, None
    return source[:start], name


def program_name(program: bytes) -> str | None:
    """The file name a single-file program was published under, if it recorded one."""
    if detect_kind(program) is not ProgramKind.PYTHON_SOURCE:
        return None
    return _split_program_name(program)[1]


def _package_files(root: Path) -> list[Path]:
    files = []
    for path in root.rglob("*.py"):
        relative = path.relative_to(root)
        if any(part == "__pycache__" or part.startswith(".") for part in relative.parts):
            continue
        if path.is_file():
            files.append(path)
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def _zip_package(root: Path) -> bytes:
    buffer = io.BytesIO()
    package = root.resolve().name
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in _package_files(root):
            info = zipfile.ZipInfo(f"{package}/{path.relative_to(root).as_posix()}", date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3  # unix, whatever the publisher's OS
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    return buffer.getvalue()


# ---- the program's files ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Program:
    """The sources of one loaded program, keyed by path relative to the package (``sub/x.py``)."""

    top: str  # the unique top-level module name
    display_root: str  # what paths are shown under in messages: the package name, or the file name
    package: bool
    sources: dict[str, bytes]
    filenames: dict[str, str] = field(default_factory=dict)  # code filename -> shown path

    def code_filename(self, relative: str) -> str:
        # unique per load, so that linecache and tracebacks never mix two databases' files
        filename = f"{self.top}/{relative}"
        shown = self.display(relative)
        self.filenames[filename] = shown
        register_display_name(filename, shown)
        return filename

    def display(self, relative: str) -> str:
        return f"{self.display_root}/{relative}" if self.package else self.display_root

    def shown(self, filename: str) -> str:
        return self.filenames.get(filename, filename)


def _read_package(program: bytes, top: str) -> _Program:
    try:
        archive = zipfile.ZipFile(io.BytesIO(program))
    except _UNREADABLE_ZIP as exc:
        raise ModuleError(f"the module package is not a valid zip file: {_zip_problem(exc)}") from None
    sources: dict[str, bytes] = {}
    total = 0
    with archive:
        for info in archive.infolist():
            name = info.filename
            if info.is_dir() or not name.endswith(".py"):
                continue
            parts = name.split("/")
            if name.startswith("/") or ".." in parts or "\\" in name:
                raise ModuleError(f"the module package has an unsafe path: {name!r}")
            total += info.file_size
            if total > _MAX_PROGRAM_BYTES:
                raise ModuleError("the module package is too large once unpacked")
            sources[name] = _read_entry(archive, info)
    if "__init__.py" in sources:
        return _Program(top, "module", True, sources)
    roots = {name.split("/", 1)[0] for name in sources if name.count("/") >= 1}
    packages = [r for r in roots if f"{r}/__init__.py" in sources]
    if len(packages) != 1:
        raise ModuleError(
            "the module package must hold exactly one package directory with an __init__.py, "
            f"found {sorted(packages) or 'none'}"
        )
    root = packages[0]
    inner = {name[len(root) + 1 :]: data for name, data in sources.items() if name.startswith(root + "/")}
    return _Program(top, root, True, inner)


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    name = info.filename
    if info.flag_bits & _ZIP_ENCRYPTED_FLAG:
        raise ModuleError(f"the module package cannot be read: {name!r} is encrypted")
    if info.compress_type not in _READABLE_METHODS:
        raise ModuleError(
            f"the module package cannot be read: {name!r} uses compression method {info.compress_type} "
            f"(readable: {', '.join(_READABLE_METHODS.values())})"
        )
    try:
        return archive.read(info)
    except _UNREADABLE_ZIP as exc:
        raise ModuleError(f"the module package is corrupt: {name!r}: {_zip_problem(exc)}") from None


def _zip_problem(exc: BaseException) -> str:
    if isinstance(exc, EOFError):  # zipfile raises it without a message
        return "its data ends before the size it declares"
    return str(exc) or type(exc).__name__


# ---- import machinery ----------------------------------------------------------------------------------------


class _ProgramFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds and executes the modules of loaded programs, and nothing else."""

    def __init__(self) -> None:
        self.programs: dict[str, _Program] = {}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        top, _, rest = fullname.partition(".")
        program = self.programs.get(top)
        if program is None:
            return None
        relative = self._relative_path(program, rest)
        if relative is None:
            return None
        is_package = relative.endswith("__init__.py")
        spec = importlib.machinery.ModuleSpec(
            fullname, self, origin=program.code_filename(relative), is_package=is_package
        )
        if is_package:
            spec.submodule_search_locations = [f"{program.top}/{relative.rpartition('/')[0]}".rstrip("/")]
        spec.has_location = True
        return spec

    def _relative_path(self, program: _Program, rest: str) -> str | None:
        if not program.package:
            return "module.py" if not rest else None
        base = rest.replace(".", "/")
        candidates = [f"{base}/__init__.py", f"{base}.py"] if base else ["__init__.py"]
        for candidate in candidates:
            if candidate in program.sources:
                return candidate
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        spec = module.__spec__
        assert spec is not None and spec.origin is not None
        program = self.programs[spec.name.partition(".")[0]]
        relative = spec.origin[len(program.top) + 1 :]
        source = program.sources[relative]
        _cache_lines(spec.origin, source)
        module.__dict__["print"] = module_print
        code = compile(source, spec.origin, "exec", dont_inherit=True)
        exec(code, module.__dict__)

    def get_source(self, fullname: str) -> str | None:
        top, _, rest = fullname.partition(".")
        program = self.programs.get(top)
        if program is None:
            return None
        relative = self._relative_path(program, rest)
        return None if relative is None else program.sources[relative].decode("utf-8", "replace")


def _cache_lines(filename: str, source: bytes) -> None:
    text = source.decode("utf-8", "replace")
    lines = text.splitlines(keepends=True)
    linecache.cache[filename] = (len(text), None, lines, filename)


_FINDER = _ProgramFinder()
_LOAD_LOCK = threading.Lock()
_counter = 0


def _install_finder() -> None:
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def _next_top_name() -> str:
    global _counter
    _counter += 1
    return f"_stdb_module_{_counter}"


# ---- loading --------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class LoadedModule:
    """A loaded, validated module program."""

    module_def: ModuleDef
    program_hash: bytes
    kind: ProgramKind
    module_name: str  # the unique top-level name in sys.modules
    python_module: types.ModuleType | None  # None for a foreign (WASM, JS) program

    @property
    def reducers(self) -> dict[str, Callable[..., Any]]:
        return {name: r.func for name, r in self.module_def.reducers.items()}

    def unload(self) -> None:
        """Forget the program's modules (call when the database stops using it)."""
        _unload(self.module_name)


def _unload(top: str) -> None:
    with _LOAD_LOCK:
        program = _FINDER.programs.pop(top, None)
        for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
            del sys.modules[name]
        if program is not None:
            for filename in program.filenames:
                linecache.cache.pop(filename, None)
                register_display_name(filename, None)


def load_module(
    program: bytes, kind: ProgramKind | int | None = None, *, name: str = "module.py"
) -> LoadedModule:
    """Import and validate a module program; raises ``ModuleError`` naming what is wrong and where.

    ``kind`` defaults to what the bytes look like; ``name`` is how a single-file program is shown in messages.
    """
    program = bytes(program)
    if len(program) > _MAX_PROGRAM_BYTES:
        raise ModuleError("the module program is too large")
    program_kind = ProgramKind(kind) if kind is not None else detect_kind(program)
    if program_kind in (ProgramKind.WASM, ProgramKind.JS):
        foreign = _FOREIGN_LOADERS.get(program_kind)
        if foreign is None:
            raise ModuleError(
                f"this process cannot run {program_kind.name} modules (no engine is registered)"
            )
        return foreign(program, program_kind)
    if program_kind is ProgramKind.PYTHON_SOURCE and name == "module.py":
        name = _split_program_name(program)[1] or name  # the name it was published under
    with _LOAD_LOCK:
        top = _next_top_name()
        if program_kind is ProgramKind.PYTHON_PACKAGE:
            files = _read_package(program, top)
        else:
            files = _Program(top, name, False, {"module.py": program})
        _install_finder()
        _FINDER.programs[top] = files
    registry = Registry()
    registry.display_path = files.shown
    try:
        python_module = _import(top, files, registry)
        module_def = build_module_def(registry)
    except BaseException:
        _unload(top)
        raise
    return LoadedModule(module_def, program_hash(program), program_kind, top, python_module)


def _import(top: str, files: _Program, registry: Registry) -> types.ModuleType:
    token = activate_registry(registry)
    try:
        return importlib.import_module(top)
    except SyntaxError as exc:
        raise ModuleError(_syntax_error_text(exc, files)) from None
    except ModuleError as exc:
        raise ModuleError(f"{_where(exc, files)}{exc}", exc.problems) from None
    except (Exception, SystemExit) as exc:
        raise ModuleError(
            f"{_where(exc, files)}error while importing the module: {type(exc).__name__}: {exc}"
        ) from None
    finally:
        deactivate_registry(token)


def _syntax_error_text(exc: SyntaxError, files: _Program) -> str:
    where = files.shown(exc.filename or "?")
    text = f"{where}:{exc.lineno}: {type(exc).__name__}: {exc.msg}"
    if exc.text:
        text += f"\n    {exc.text.strip()}"
    return text


def _where(exc: BaseException, files: _Program) -> str:
    """``"path:line: "`` of the innermost frame of the program's own code in the exception's traceback."""
    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename in files.filenames:
            found = frame
    if found is None:
        return ""
    return f"{files.shown(found.filename)}:{found.lineno}: "
