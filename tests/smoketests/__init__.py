"""Upstream SpacetimeDB's end-to-end smoketests (crates/smoketests), ported with the modules rewritten in Python.

Each upstream test file ``cluster/X.rs`` is ported as ``test_X.py`` (``standalone/X.rs`` as ``test_standalone_X.py``,
``cli/`` files with ``cli_`` in the name); each upstream ``#[test]`` keeps its function name (``test_`` in front where it lacks one). An upstream test whose
subject does not apply here (another module language, WASM internals, a cluster-only feature) is listed in that
port file's ``NOT_APPLICABLE`` mapping with the reason. ``upstream_tests.txt`` lists every upstream test; the ledger
(``python -m tests.smoketests.ledger``) counts what is ported, and ``test_ledger.py`` checks each port file accounts
for all of its upstream tests.
"""
