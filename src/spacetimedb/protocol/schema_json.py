"""Reading the SATS-JSON of a module schema (RawModuleDef v9, as ``/schema?version=9`` serves it) by hand.

Clients and code generators walk that JSON without the server's types; these two helpers read its option and
sum encodings (``{"some": v}`` / ``{"none": []}``, ``{"VariantName": payload}``) and raise the caller's error
type on anything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def option_value(value: Any, error: type[Exception] = ValueError) -> Any:
    """``{"some": v}`` -> v; ``{"none": []}`` or ``null`` -> None."""
    if value is None:
        return None
    if isinstance(value, Mapping) and len(value) == 1:
        if "some" in value:
            return value["some"]
        if "none" in value:
            return None
    raise error(f"expected an option ({{'some': ...}} or {{'none': []}}), got {value!r}")


def variant_value(value: Any, error: type[Exception] = ValueError) -> tuple[str, Any]:
    """``{"Name": payload}`` -> (name, payload)."""
    if not isinstance(value, Mapping) or len(value) != 1:
        raise error(f"expected a sum value like {{'Name': payload}}, got {value!r}")
    ((name, payload),) = value.items()
    return name, payload
