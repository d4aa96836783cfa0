"""Upstream's smoketest module ``auto-migration-event-table-after``: a column gone, a field added to a record."""

from spacetimedb import table, type, u32, u64, u128


@type
class SomeProduct:
    a: u32
    b: u64
    c: u128


@table(public=True, event=True)
class SomeEvent:
    prod: SomeProduct
