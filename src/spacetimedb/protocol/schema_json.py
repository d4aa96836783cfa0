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


def view_table_entries(raw: Mapping[str, Any], error: type[Exception] = ValueError) -> list[dict[str, Any]]:
    """The views of a RawModuleDef v9 (its ``misc_exports`` ``View`` entries) as table entries: clients subscribe
    to a view and cache its rows like a table's, named after the view, without indexes, keyed by the view's
    primary key where the export carries one (this project's ``event_flags`` extras). Each entry has
    ``"is_view": True``; its ``product_type_ref`` is the row type the view's ``Array`` or ``Option`` holds."""
    out = []
    for export in raw.get("misc_exports", []):
        kind, view = variant_value(export, error)
        if kind != "View":
            continue
        kind, inner = variant_value(view["return_type"], error)
        if kind == "Sum":  # Option(row): the `some` variant's type
            inner = inner["variants"][0]["algebraic_type"]
        ref_kind, ref = variant_value(inner, error)
        if ref_kind != "Ref":
            raise error(f"view {view['name']}: its rows must be a named product type, got {inner!r}")
        out.append(
            {
                "name": view["name"],
                "product_type_ref": int(ref),
                "primary_key": list(view.get("primary_key", [])),  # this project's extra key, see raw_v9_json
                "indexes": [],
                "constraints": [],
                "sequences": [],
                "schedule": {"none": []},
                "table_type": {"User": []},
                "table_access": {"Public": []} if view["is_public"] else {"Private": []},
                "is_view": True,
            }
        )
    return out
