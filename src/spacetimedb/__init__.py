"""SpacetimeDB-style database server in Python.

The top-level package re-exports the module API (``@table``, ``@reducer``, the SATS type aliases and
special types) lazily, so that importing ``spacetimedb.cli`` stays cheap.
"""

from __future__ import annotations

__version__ = "0.1.0"
