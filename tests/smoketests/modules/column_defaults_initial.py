"""Upstream's column-defaults smoketest module, first version (``RUST_INITIAL`` in column_defaults.rs)."""

from spacetimedb import table, u32


@table(public=True)
class DefaultsTestTable:
    id: u32
