"""Landlock: a confined worker reaches its database directory (read and write) and what it needs to run Python
(read only), and nothing else."""

from __future__ import annotations

import errno
import socket
from pathlib import Path

import pytest

from .helpers import SUPPORT, assert_allowed, assert_denied, needs_sandbox, run_child

pytestmark = needs_sandbox


@pytest.fixture
def trees(tmp_path: Path) -> dict[str, str]:
    """A database directory (to be writable), a read-only tree and an unrelated one, each with a file."""
    for name in ("db", "readonly", "other"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "file.txt").write_text(f"{name} contents")
    return {name: str(tmp_path / name) for name in ("db", "readonly", "other")}


def test_landlock_denies_reading_outside_the_policy(trees):
    child = run_child(
        """
        attempt("abi", lambda: confine(worker_policy()))
        other = Path(ARGS["other"])
        attempt("read_other_file", lambda: (other / "file.txt").read_text())
        attempt("list_other_directory", lambda: os.listdir(other))
        attempt("read_etc_hostname", lambda: Path("/etc/hostname").read_text())
        attempt("read_etc_passwd", lambda: Path("/etc/passwd").read_text())
        attempt("read_init_environ", lambda: Path("/proc/1/environ").read_bytes())
        """,
        args=trees,
    )
    assert assert_allowed(child["abi"]) == min(SUPPORT.landlock_abi, 7)
    for name in ("read_other_file", "list_other_directory", "read_etc_passwd", "read_init_environ"):
        assert_denied(child[name], errno=errno.EACCES)
    if Path("/etc/hostname").exists():
        assert_denied(child["read_etc_hostname"], errno=errno.EACCES)


def test_landlock_allows_everything_inside_the_writable_tree(trees):
    child = run_child(
        """
        confine(worker_policy())
        db = Path(ARGS["db"])
        attempt("read", lambda: (db / "file.txt").read_text())
        attempt("create", lambda: (db / "new.txt").write_text("new"))
        attempt("append", lambda: (db / "new.txt").open("a").write("er"))
        attempt("read_back", lambda: (db / "new.txt").read_text())
        attempt("truncate", lambda: os.truncate(db / "new.txt", 1))
        attempt("mkdir", lambda: (db / "sub").mkdir())
        attempt("rename", lambda: str((db / "new.txt").rename(db / "renamed.txt")))
        attempt("move_to_subdirectory", lambda: str((db / "renamed.txt").rename(db / "sub" / "moved.txt")))
        attempt("fsync_directory", lambda: os.fsync(os.open(db, os.O_RDONLY | os.O_DIRECTORY)))
        attempt("delete", lambda: (db / "sub" / "moved.txt").unlink())
        attempt("rmdir", lambda: (db / "sub").rmdir())
        attempt("listing", lambda: sorted(os.listdir(db)))
        """,
        args=trees,
    )
    assert assert_allowed(child["read"]) == "db contents"
    for name in ("create", "append", "truncate", "mkdir", "rename", "move_to_subdirectory"):
        assert_allowed(child[name])
    assert assert_allowed(child["read_back"]) == "newer"
    for name in ("fsync_directory", "delete", "rmdir"):
        assert_allowed(child[name])
    assert assert_allowed(child["listing"]) == ["file.txt"]


def test_landlock_readable_trees_are_read_only(trees):
    child = run_child(
        """
        readonly = Path(ARGS["readonly"])
        confine(worker_policy(readable=(*default_readable_paths(), readonly)))
        attempt("read", lambda: (readonly / "file.txt").read_text())
        attempt("overwrite", lambda: (readonly / "file.txt").write_text("changed"))
        attempt("create", lambda: (readonly / "new.txt").write_text("new"))
        attempt("delete", lambda: (readonly / "file.txt").unlink())
        attempt("move_into_db", lambda: (readonly / "file.txt").rename(Path(ARGS["db"]) / "stolen.txt"))
        attempt("create_in_other", lambda: (Path(ARGS["other"]) / "new.txt").write_text("new"))
        """,
        args=trees,
    )
    assert assert_allowed(child["read"]) == "readonly contents"
    for name in ("overwrite", "create", "delete", "create_in_other"):
        assert_denied(child[name], errno=errno.EACCES)
    assert_denied(child["move_into_db"])  # EXDEV or EACCES: either way the file stays
    assert Path(trees["readonly"], "file.txt").read_text() == "readonly contents"


def test_landlock_still_lets_python_import_the_stdlib_and_the_project(trees):
    child = run_child(
        """
        import importlib

        names = ["json", "decimal", "re", "ctypes", "sqlite3", "hashlib", "xml.etree.ElementTree"]
        names.append("spacetimedb.sats")
        attempt("imported_before", lambda: sorted(name for name in names if name in sys.modules))
        confine(worker_policy())
        for name in names:
            attempt(name, lambda: importlib.import_module(name).__name__)
        attempt("decimal_works", lambda: str(importlib.import_module("decimal").Decimal("1.1") * 3))

        def query_sqlite():
            connection = importlib.import_module("sqlite3").connect(":memory:")
            return connection.execute("select 6 * 7").fetchone()[0]

        attempt("sqlite_works", query_sqlite)
        """,
        args=trees,
    )
    # json, decimal, sqlite3, hashlib, xml and spacetimedb.sats really are first loaded after confinement.
    assert assert_allowed(child["imported_before"]) == ["ctypes", "re"]
    for name in ("json", "decimal", "re", "ctypes", "hashlib", "xml.etree.ElementTree", "spacetimedb.sats"):
        assert assert_allowed(child[name]) == name
    assert assert_allowed(child["decimal_works"]) == "3.3"
    if child["sqlite3"]["ok"] or child["sqlite3"]["error"] != "ModuleNotFoundError":
        assert assert_allowed(child["sqlite_works"]) == 42


@pytest.mark.skipif(
    SUPPORT.landlock_abi is None or SUPPORT.landlock_abi < 4, reason="TCP rules need Landlock ABI 4"
)
def test_landlock_denies_tcp_bind_and_connect(trees):
    with socket.create_server(("127.0.0.1", 0)) as server:
        child = run_child(
            """
            import socket

            confine(worker_policy(seccomp=False))  # Landlock alone: socket() itself stays allowed
            attempt("connect", lambda: socket.create_connection(("127.0.0.1", ARGS["port"]), 5).close())
            attempt("bind", lambda: socket.socket().bind(("127.0.0.1", 0)))
            attempt("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).bind(("127.0.0.1", 0)))
            """,
            args={**trees, "port": server.getsockname()[1]},
        )
    assert_denied(child["connect"], errno=errno.EACCES)
    assert_denied(child["bind"], errno=errno.EACCES)
    assert_allowed(child["udp"])  # Landlock has no UDP rules (yet); seccomp's socket() ban covers it


@pytest.mark.skipif(
    SUPPORT.landlock_abi is None or SUPPORT.landlock_abi < 6, reason="signal scoping needs ABI 6"
)
def test_landlock_scopes_signals_to_the_sandbox(trees):
    child = run_child(
        """
        confine(worker_policy(seccomp=False))  # Landlock alone
        attempt("signal_parent", lambda: os.kill(os.getppid(), 0))
        attempt("signal_self", lambda: os.kill(os.getpid(), 0))
        """,
        args=trees,
    )
    assert_denied(child["signal_parent"], errno=errno.EPERM)
    assert_allowed(child["signal_self"])


def test_landlock_rule_for_a_missing_path_is_a_sandbox_error(trees):
    child = run_child(
        """
        missing = Path(ARGS["db"]) / "missing"
        attempt("restrict", lambda: restrict_filesystem(SandboxPolicy(writable=(missing,))))
        attempt("still_unconfined", lambda: Path(ARGS["other"], "file.txt").read_text())
        """,
        args=trees,
    )
    assert child["restrict"]["error"] == "SandboxError"
    assert "missing" in child["restrict"]["message"] and "ENOENT" in child["restrict"]["message"]
    assert assert_allowed(child["still_unconfined"]) == "other contents"


def test_landlock_refuses_a_process_with_other_threads(trees):
    child = run_child(
        """
        import threading

        release = threading.Event()
        thread = threading.Thread(target=release.wait)
        thread.start()
        attempt("restrict", lambda: restrict_filesystem(worker_policy()))
        attempt("limits", lambda: apply_process_limits(worker_policy()))
        release.set()
        thread.join()
        """,
        args=trees,
    )
    for name in ("restrict", "limits"):
        assert child[name]["error"] == "SandboxError"
        assert "2 threads" in child[name]["message"]
