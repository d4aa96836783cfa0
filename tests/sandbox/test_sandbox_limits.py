"""Process limits: memory, core dumps, open files, no_new_privs and capabilities."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import pytest

from spacetimedb.sandbox import SandboxPolicy, default_readable_paths

from .helpers import assert_allowed, assert_denied, needs_linux, run_child

MiB = 1 << 20


@needs_linux
def test_memory_limit_turns_a_huge_allocation_into_memory_error():
    child = run_child(
        """
        apply_process_limits(SandboxPolicy(memory_bytes=512 << 20))
        attempt("huge", lambda: len(bytearray(1 << 30)))
        attempt("small_after", lambda: len(bytearray(1 << 20)))
        """
    )
    assert_denied(child["huge"], "MemoryError")
    assert assert_allowed(child["small_after"]) == 1 << 20


@needs_linux
def test_limits_are_set_soft_and_hard():
    child = run_child(
        """
        import resource

        apply_process_limits(SandboxPolicy(memory_bytes=768 << 20, max_open_files=64))
        attempt("address_space", lambda: list(resource.getrlimit(resource.RLIMIT_AS)))
        attempt("core", lambda: list(resource.getrlimit(resource.RLIMIT_CORE)))
        attempt("open_files", lambda: list(resource.getrlimit(resource.RLIMIT_NOFILE)))
        attempt("raise_again", lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128)))

        def open_until_refused():
            opened = []
            try:
                while len(opened) < 1000:
                    opened.append(os.open(os.devnull, os.O_RDONLY))
            except OSError as error:
                return [len(opened), error.errno]
            finally:
                for fd in opened:
                    os.close(fd)

        attempt("open_until_refused", open_until_refused)
        """
    )
    assert assert_allowed(child["address_space"]) == [768 * MiB, 768 * MiB]
    assert assert_allowed(child["core"]) == [0, 0]
    assert assert_allowed(child["open_files"]) == [64, 64]
    assert_denied(child["raise_again"], "ValueError")
    opened, error_number = assert_allowed(child["open_until_refused"])
    assert 50 < opened < 64 and error_number == errno.EMFILE


@needs_linux
def test_memory_limit_none_leaves_the_address_space_alone():
    child = run_child(
        """
        import resource

        before = resource.getrlimit(resource.RLIMIT_AS)
        apply_process_limits(SandboxPolicy(memory_bytes=None))
        attempt("unchanged", lambda: resource.getrlimit(resource.RLIMIT_AS) == before)
        """
    )
    assert assert_allowed(child["unchanged"]) is True


@needs_linux
@pytest.mark.skipif(os.geteuid() != 0, reason="dropping capabilities shows only when running as root")
def test_root_loses_every_capability_and_gains_no_new_privs():
    child = run_child(
        """
        attempt("before", lambda: status_field("CapEff"))
        apply_process_limits(SandboxPolicy())
        for field in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs"):
            attempt(field, lambda: status_field(field))
        attempt("chown", lambda: os.chown(ARGS["file"], 12345, 12345))
        """,
        args={"file": __file__},
    )
    assert int(assert_allowed(child["before"]), 16) != 0
    for field in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(assert_allowed(child[field]), 16) == 0, field
    assert assert_allowed(child["NoNewPrivs"]) == "1"
    assert_denied(child["chown"], errno=errno.EPERM)  # root without CAP_CHOWN


def test_policy_normalises_paths_and_checks_limits():
    policy = SandboxPolicy(writable=["/tmp/db"], readable=(Path("/usr"),))
    assert policy.writable == (Path("/tmp/db"),) and policy.readable == (Path("/usr"),)
    assert hash(policy) == hash(SandboxPolicy(writable=(Path("/tmp/db"),), readable=(Path("/usr"),)))
    with pytest.raises(ValueError, match="memory_bytes"):
        SandboxPolicy(memory_bytes=0)
    with pytest.raises(ValueError, match="max_open_files"):
        SandboxPolicy(max_open_files=0)


def test_default_readable_paths_cover_the_interpreter_and_the_project(tmp_path, monkeypatch):
    # An empty sys.path entry means the current directory: never granted (it may be the server's data).
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", ["", *sys.path])
    paths = default_readable_paths()
    assert list(paths) == sorted(set(paths))
    assert all(path.is_absolute() and path.exists() and path == path.resolve() for path in paths)
    src = Path(__file__).resolve().parents[2] / "src"
    for needed in (Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), src):
        assert needed in paths
    if Path("/etc/ld.so.cache").exists():
        assert Path("/etc/ld.so.cache").resolve() in paths
    assert tmp_path.resolve() not in paths


@needs_linux
def test_a_data_limit_caps_allocations_but_not_reserved_address_space():
    """What a worker running V8 applies: RLIMIT_DATA (V8 reserves address space it never backs)."""
    child = run_child(
        """
        import mmap
        import resource

        from spacetimedb.sandbox import limit_memory

        limit_memory(512 << 20, address_space=False)
        attempt("data", lambda: list(resource.getrlimit(resource.RLIMIT_DATA)))
        attempt("address_space", lambda: resource.getrlimit(resource.RLIMIT_AS)[0] == resource.RLIM_INFINITY)
        attempt("huge", lambda: len(bytearray(1 << 30)))
        # an inaccessible reservation of 4 GiB, as V8 makes, is not data
        attempt("reserve", lambda: len(mmap.mmap(-1, 4 << 30, flags=mmap.MAP_PRIVATE, prot=0)))  # PROT_NONE
        """
    )
    assert assert_allowed(child["data"]) == [512 * MiB, 512 * MiB]
    assert assert_allowed(child["address_space"]) is True
    assert_denied(child["huge"], "MemoryError")
    assert assert_allowed(child["reserve"]) == 4 << 30
