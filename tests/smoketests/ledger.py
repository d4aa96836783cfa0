"""Which upstream smoketests are ported, not applicable, or not yet ported: ``python -m tests.smoketests.ledger``.

A port file is ``test_<name>.py`` for upstream ``cluster/<name>.rs`` (``standalone/<name>.rs`` becomes
``test_standalone_<name>.py``; a ``cli/`` directory adds ``cli_``). An upstream test is *ported* when the port file
defines a function of the same name (with ``test_`` in front where upstream's name lacks it, so pytest collects it), and *not applicable* when its ``NOT_APPLICABLE`` mapping names it.
"""

from __future__ import annotations

import ast
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
UPSTREAM_LIST = HERE / "upstream_tests.txt"


@dataclass(frozen=True)
class UpstreamTest:
    file: str  # relative to upstream's crates/smoketests/tests, e.g. "cluster/sql.rs"
    name: str


def upstream_tests() -> list[UpstreamTest]:
    lines = UPSTREAM_LIST.read_text().splitlines()
    return [UpstreamTest(*line.split()) for line in lines if line and not line.startswith("#")]


def pytest_name(upstream_name: str) -> str:
    """The port's function name: upstream's, with ``test_`` in front if it has not (pytest collects ``test_*``)."""
    return upstream_name if upstream_name.startswith("test_") else f"test_{upstream_name}"


def port_file(upstream_file: str) -> Path:
    parts = upstream_file.removesuffix(".rs").split("/")
    kind, rest = parts[0], parts[1:]
    prefix = "standalone_" if kind == "standalone" else ""
    return HERE / f"test_{prefix}{'_'.join(rest)}.py"


@dataclass(frozen=True)
class PortFile:
    functions: frozenset[str]
    xfailed: frozenset[str]  # ported, but marked as a known difference
    not_applicable: dict[str, str]


def read_port(path: Path) -> PortFile:
    tree = ast.parse(path.read_text())
    functions: set[str] = set()
    xfailed: set[str] = set()
    not_applicable: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            functions.add(node.name)
            if any("xfail" in ast.unparse(decorator) for decorator in node.decorator_list):
                xfailed.add(node.name)
        elif isinstance(node, ast.AnnAssign | ast.Assign):
            targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
            if any(isinstance(t, ast.Name) and t.id == "NOT_APPLICABLE" for t in targets) and node.value:
                not_applicable = ast.literal_eval(node.value)
    return PortFile(frozenset(functions), frozenset(xfailed), not_applicable)


def status(test: UpstreamTest, ports: dict[Path, PortFile]) -> str:
    path = port_file(test.file)
    port = ports.get(path)
    if port is None:
        return "not ported"
    if test.name in port.not_applicable:
        return "not applicable"
    name = pytest_name(test.name)
    if name in port.xfailed:
        return "ported, known difference (xfail)"
    if name in port.functions:
        return "ported"
    return "missing from its port file"


def ported_files() -> dict[Path, PortFile]:
    return {path: read_port(path) for path in sorted(HERE.glob("test_*.py")) if path.name != "test_ledger.py"}


def main() -> None:
    ports = ported_files()
    counts: Counter[str] = Counter()
    for test in upstream_tests():
        state = status(test, ports)
        counts[state] += 1
        print(f"{state:34} {test.file} {test.name}")
        reason = (
            ports[port_file(test.file)].not_applicable.get(test.name) if state == "not applicable" else None
        )
        if reason:
            print(f"{'':34}   because: {reason}")
    print()
    for state, count in sorted(counts.items()):
        print(f"{count:4} {state}")


if __name__ == "__main__":
    main()
