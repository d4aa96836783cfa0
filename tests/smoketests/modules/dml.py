"""Upstream's smoketest module ``dml``."""

from spacetimedb import table


@table(public=True)
class T:
    name: str
