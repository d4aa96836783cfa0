"""Each port file accounts for every upstream test of its upstream file: ported under the same name, or listed as
not applicable with a reason."""

from __future__ import annotations

from tests.smoketests.ledger import port_file, ported_files, pytest_name, upstream_tests


def test_every_port_file_names_an_upstream_file():
    upstream_ports = {port_file(test.file) for test in upstream_tests()}
    assert set(ported_files()) <= upstream_ports


def test_each_port_file_accounts_for_all_of_its_upstream_tests():
    ports = ported_files()
    for test in upstream_tests():
        port = ports.get(port_file(test.file))
        if port is None:
            continue
        assert pytest_name(test.name) in port.functions or test.name in port.not_applicable, (
            test.file,
            test.name,
        )
        assert test.name not in port.not_applicable or port.not_applicable[test.name].strip(), test.name
