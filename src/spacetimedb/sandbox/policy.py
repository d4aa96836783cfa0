"""What a worker asks to be confined to (``SandboxPolicy``) and the paths it needs to read to run at all."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

# Where the dynamic loader finds shared libraries (Python's extension modules link against them).
_SHARED_LIBRARY_DIRECTORIES = ("/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib")
_LOADER_CACHE = "/etc/ld.so.cache"


@dataclass(frozen=True)
class SandboxPolicy:
    """The confinement a worker applies to itself.

    ``writable`` trees may be read and written (the worker's database directory), ``readable`` trees only read
    (the Python installation, the installed project); with Landlock on, everything else on the file system is
    out of reach. ``memory_bytes`` caps the address space (None leaves it as it is), ``max_open_files`` the
    number of file descriptors. ``landlock`` and ``seccomp`` switch the two kernel mechanisms on or off.
    """

    writable: tuple[Path, ...] = ()
    readable: tuple[Path, ...] = ()
    memory_bytes: int | None = 2 << 30
    max_open_files: int = 256
    landlock: bool = True
    seccomp: bool = True

    def __post_init__(self) -> None:
        # Accept any iterable of str or Path, but store tuples of Path so the policy stays hashable.
        object.__setattr__(self, "writable", tuple(Path(path) for path in self.writable))
        object.__setattr__(self, "readable", tuple(Path(path) for path in self.readable))
        if self.memory_bytes is not None and self.memory_bytes <= 0:
            raise ValueError(f"memory_bytes must be positive or None, not {self.memory_bytes}")
        if self.max_open_files <= 0:
            raise ValueError(f"max_open_files must be positive, not {self.max_open_files}")


def default_readable_paths() -> tuple[Path, ...]:
    """What a worker needs to read to run Python and import this project and its dependencies.

    The interpreter's prefixes, every existing directory on ``sys.path``, the directory holding the
    ``spacetimedb`` package (``src`` for an editable install), the shared-library directories and the loader
    cache: resolved, deduplicated, sorted, existing paths only. An empty ``sys.path`` entry (the current
    directory, absent under ``python -I``) is left out on purpose: a server's current directory may well be
    its data directory, which no worker should read.
    """
    # parents[0] is sandbox/, [1] is the spacetimedb package, [2] the directory that holds it.
    project_root = Path(__file__).resolve().parents[2]
    candidates = [
        Path(sys.prefix),
        Path(sys.base_prefix),
        Path(sys.exec_prefix),
        Path(sys.base_exec_prefix),
        project_root,
        *(Path(directory) for directory in _SHARED_LIBRARY_DIRECTORIES),
    ]
    candidates += [
        Path(entry) for entry in sys.path if isinstance(entry, str) and entry and Path(entry).is_dir()
    ]
    found = {path.resolve() for path in candidates if path.is_dir()}
    loader_cache = Path(_LOADER_CACHE)
    if loader_cache.is_file():
        found.add(loader_cache.resolve())
    return tuple(sorted(found))
