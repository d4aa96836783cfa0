"""Names in generated bindings: the case conversion SpacetimeDB's own generator applies (``convert_case`` 0.6,
shared with the module-def decoder in ``module.casing``), Python identifiers, and renames that keep an accessor
from hiding a member of an SDK's class."""

from __future__ import annotations

import keyword

from spacetimedb.module.casing import camel_case, pascal_case, snake_case, split_words

__all__ = ["camel_case", "pascal_case", "python_identifier", "snake_case", "split_words", "unclaimed_name"]


def python_identifier(name: str) -> str:
    """``name`` as a NamedTuple field or attribute; the same rule as ``spacetimedb.client.schema.python_name``:
    keywords get a trailing underscore, a leading digit or underscore gets an ``f`` in front."""
    out = "".join(c if c.isalnum() or c == "_" else "_" for c in name) or "_"
    if out[0].isdigit() or out[0] == "_":
        out = "f" + out
    if keyword.iskeyword(out) or keyword.issoftkeyword(out):
        out += "_"
    return out


def unclaimed_name(name: str, suffix: str, reserved: frozenset[str], taken: set[str]) -> str:
    """``name`` + ``suffix``, with ``_`` appended until it is neither ``reserved`` nor ``taken``; it is added to
    ``taken``. How bindings rename an accessor that would hide a member of an SDK's class."""
    renamed = name + suffix
    while renamed in reserved or renamed in taken:
        renamed += "_"
    taken.add(renamed)
    return renamed
