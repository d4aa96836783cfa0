"""Lower layers never import upper ones: every ``spacetimedb.<package>`` import is checked against the layer table
of docs/architecture.md (imports inside functions count too: they are still dependencies)."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "spacetimedb"

ALLOWED: dict[str, set[str]] = {
    "sats": set(),
    "commitlog": set(),
    "durability": {"commitlog"},
    "datastore": {"sats"},
    "db": {"sats", "commitlog", "durability", "datastore"},
    "sql": {"sats", "datastore", "db"},
    "subscription": {"sats", "datastore", "db", "sql"},
    "protocol": {"sats"},
    "module": {"sats", "datastore"},
    "sandbox": set(),
    "backup": {"commitlog", "durability"},
    "host": {
        "sats",
        "commitlog",
        "durability",
        "datastore",
        "db",
        "sql",
        "subscription",
        "protocol",
        "module",
        "sandbox",
        "backup",
    },
    # the server process: it supervises workers and never loads module code, so neither it nor its supervisor
    # may import the module API, the module host or what only a database's worker runs (sql, subscriptions)
    "controller": {"sats", "protocol", "backup"},
    "server": {
        "sats",
        "commitlog",
        "durability",
        "datastore",
        "db",
        "protocol",
        "sandbox",
        "controller",
        "backup",
    },
    "client": {"sats", "protocol"},
    "codegen": {"sats", "protocol", "module"},
    # runs a module in the test's own process, as a database's worker would
    "testing": {"sats", "module", "host"},
}
# imported by any layer: they import nothing from the project
SHARED = {"fsutil", "keccak", "module_log", "native", "sizes", "__init__"}


def imported_packages(path: Path, package: str) -> set[str]:
    """The ``spacetimedb`` subpackages (other than ``package``) that the file at ``path`` imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = path.relative_to(SRC).parts[:-1]  # the file's package, e.g. ("host",)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: climb level - 1 packages from the file's own
                base = here[: len(here) - (node.level - 1)]
                names = [".".join(("spacetimedb", *base, *(node.module or "").split("."))).rstrip(".")]
            else:
                names = [node.module or ""]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "spacetimedb" and len(parts) > 1 and parts[1] not in ("", package):
                found.add(parts[1])
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_lower_layers(package):
    offenders = {}
    for path in sorted((SRC / package).rglob("*.py")):
        bad = imported_packages(path, package) - ALLOWED[package] - SHARED
        if bad:
            offenders[str(path.relative_to(SRC))] = sorted(bad)
    assert not offenders, f"{package} imports layers it may not: {offenders}"


def test_every_package_is_in_the_table():
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages - {"cli"} == set(ALLOWED)


@pytest.mark.parametrize("shared", sorted(SHARED - {"__init__"}))
def test_shared_modules_import_nothing_from_the_project(shared):
    assert imported_packages(SRC / f"{shared}.py", shared) == set()
