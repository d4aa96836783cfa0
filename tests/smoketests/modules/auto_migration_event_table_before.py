"""Upstream's smoketest module ``auto-migration-event-table-before``."""

from spacetimedb import table, type, u32, u64


@type
class SomeProduct:
    a: u32
    b: u64


@table(public=True, event=True)
class SomeEvent:
    foo: str
    prod: SomeProduct
