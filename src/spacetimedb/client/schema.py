"""What the client knows about a module: its tables and reducers, from RawModuleDef v9 JSON.

The JSON comes either from generated bindings (which embed it, with their typed classes) or from the server's
schema route (``GET /v1/database/:name/schema?version=9``) for untyped scripts. Either way every table gets a
compiled row codec and a row class: the generated NamedTuple, or a namedtuple made here from the column names.
Converters turn decoded canonical values (tuples, ``SumValue``) into those classes, recursively; values of the
classes are still canonical (a NamedTuple is a tuple, a generated sum is a ``SumValue``), so encoding needs no
conversion back.
"""

from __future__ import annotations

import functools
import keyword
from collections import namedtuple
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from spacetimedb.protocol.schema_json import option_value, variant_value, view_table_entries
from spacetimedb.sats import (
    AlgebraicType,
    ArrayType,
    Codec,
    ProductType,
    RefType,
    Some,
    SumType,
    SumValue,
    Typespace,
    codec,
    special_kind,
)
from spacetimedb.sats.meta import type_from_json

from .errors import SchemaError

Converter = Callable[[Any], Any]
T = TypeVar("T")


def python_name(name: str) -> str:
    """A column or parameter name usable as a Python attribute (keywords get a trailing underscore)."""
    out = "".join(c if c.isalnum() or c == "_" else "_" for c in name) or "_"
    if out[0].isdigit() or out[0] == "_":  # namedtuple fields may start with neither
        out = "f" + out
    if keyword.iskeyword(out) or keyword.issoftkeyword(out):
        out += "_"
    return out


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.replace("-", "_").split("_") if part) or "Row"


_option = functools.partial(option_value, error=SchemaError)
_variant = functools.partial(variant_value, error=SchemaError)


class _Converters:
    """Builds, once per type, the function from a decoded canonical value to the value with classes.

    ``None`` means "no conversion needed", so plain rows cost nothing. Recursive types go through a
    placeholder that looks the finished converter up when called.
    """

    def __init__(self, typespace: Typespace, classes: Mapping[int, type]) -> None:
        self.typespace = typespace
        self.classes = classes
        self.done: dict[int, Converter | None] = {}
        self.building: dict[int, Converter] = {}

    def of(self, ty: AlgebraicType) -> Converter | None:
        if isinstance(ty, RefType):
            return self.ref(ty.index)
        if isinstance(ty, ArrayType):
            inner = self.of(ty.elem)
            return None if inner is None else (lambda v: tuple(map(inner, v)))
        kind = special_kind(ty)
        if isinstance(ty, ProductType) and kind is None:
            return self.product(ty)
        if isinstance(ty, SumType) and kind == "option":
            return self.option(ty)
        if isinstance(ty, SumType) and kind != "schedule_at":
            return self.sum(ty)
        return None

    def product(self, ty: ProductType) -> Converter | None:
        fields = [self.of(e.type) for e in ty.elements]
        if all(f is None for f in fields):
            return None
        pairs = list(enumerate(fields))
        return lambda v: tuple(v[i] if f is None else f(v[i]) for i, f in pairs)

    def option(self, ty: SumType) -> Converter | None:
        inner_type = ty.variants[0].type
        inner = self.of(inner_type)
        if inner is None:
            return None
        resolved = self.typespace.resolve(inner_type) if isinstance(inner_type, RefType) else inner_type
        if special_kind(resolved) == "option":  # a nested option's some-case is wrapped in Some
            return lambda v: None if v is None else Some(inner(v.value))
        return lambda v: None if v is None else inner(v)

    def sum(self, ty: SumType) -> Converter | None:
        variants = [self.of(v.type) for v in ty.variants]
        if all(f is None for f in variants):
            return None
        return lambda v: SumValue(v.tag, v.value if variants[v.tag] is None else variants[v.tag](v.value))

    def ref(self, index: int) -> Converter | None:
        if index in self.done:
            return self.done[index]
        if index in self.building:
            return self.building[index]

        def placeholder(value: Any) -> Any:
            finished = self.done[index]
            return value if finished is None else finished(value)

        self.building[index] = placeholder
        try:
            target = self.typespace.resolve(RefType(index))
        except KeyError as exc:
            raise SchemaError(str(exc)) from None
        inner = self.of(target)
        cls = self.classes.get(index)
        result: Converter | None
        if cls is None:
            result = inner
        elif isinstance(target, ProductType):
            make = getattr(cls, "_make", None) or (lambda v: cls(*v))
            result = make if inner is None else (lambda v: make(inner(v)))
        else:
            result = (lambda v: cls(v.tag, v.value)) if inner is None else (lambda v: cls(*inner(v)))
        self.done[index] = result
        del self.building[index]
        return result


@dataclass(frozen=True)
class IndexSchema:
    """A client-side index: ``find`` when its columns are unique, ``filter`` otherwise."""

    accessor: str
    columns: tuple[int, ...]
    unique: bool


class TableSchema:
    """One table: its columns, key, indexes, and how to turn row bytes into row objects."""

    def __init__(
        self,
        name: str,
        row_type: ProductType,
        product_type_ref: int,
        primary_key: int | None,
        indexes: list[IndexSchema],
        typespace: Typespace,
        make_row: Converter | None,
        row_class: type,
        is_public: bool,
    ) -> None:
        self.name = name
        self.row_type = row_type
        self.product_type_ref = product_type_ref
        self.column_names = tuple(e.name or f"col{i}" for i, e in enumerate(row_type.elements))
        self.primary_key = primary_key
        self.indexes = indexes
        self.is_public = is_public
        self.row_class = row_class
        self.codec: Codec = codec(RefType(product_type_ref), typespace)
        self._make_row = make_row

    def decode_rows(self, data: bytes) -> list[tuple[bytes, Any]]:
        """Split concatenated row encodings: ``(row bytes, row object)`` per row.

        Rows are decoded one after the other, like the official SDKs, so a wrong size hint from the server
        cannot shift the rows (the bytes are kept: rows of tables without a primary key are keyed by them).
        """
        out = []
        decode_from = self.codec.decode_from
        make = self._make_row
        pos = 0
        end = len(data)
        while pos < end:
            value, next_pos = decode_from(data, pos)
            out.append((data[pos:next_pos], value if make is None else make(value)))
            pos = next_pos
        return out

    def make_row(self, value: Any) -> Any:
        return value if self._make_row is None else self._make_row(value)

    def encode_row(self, row: Any) -> bytes:
        return self.codec.encode(row)

    def __repr__(self) -> str:
        return f"TableSchema({self.name!r}, columns={self.column_names})"


class ReducerSchema:
    """One reducer: parameter names and types, and the encoder of its arguments."""

    def __init__(self, name: str, params: ProductType, lifecycle: str | None, typespace: Typespace) -> None:
        self.name = name
        self.params = params
        self.param_names = tuple(e.name or f"arg{i}" for i, e in enumerate(params.elements))
        self.lifecycle = lifecycle
        self.codec = codec(params, typespace)

    def bind(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[Any, ...]:
        """Positional and keyword arguments, in parameter order; raises ``TypeError`` like a Python call."""
        names = self.param_names
        if len(args) > len(names):
            raise TypeError(f"{self.name}() takes {len(names)} argument(s) but {len(args)} were given")
        values = list(args) + [_MISSING] * (len(names) - len(args))
        for key, value in kwargs.items():
            candidates = [i for i, n in enumerate(names) if key in (n, python_name(n))]
            if not candidates:
                raise TypeError(f"{self.name}() got an unexpected keyword argument {key!r}")
            if values[candidates[0]] is not _MISSING:
                raise TypeError(f"{self.name}() got multiple values for argument {key!r}")
            values[candidates[0]] = value
        missing = [names[i] for i, v in enumerate(values) if v is _MISSING]
        if missing:
            raise TypeError(f"{self.name}() missing argument(s): {', '.join(missing)}")
        return tuple(values)

    def encode_args(self, values: tuple[Any, ...]) -> bytes:
        return self.codec.encode(values)

    def __repr__(self) -> str:
        return f"ReducerSchema({self.name!r}, params={self.param_names})"


class ProcedureSchema(ReducerSchema):
    """One procedure: its parameters as a reducer's, and the decoder of its return value."""

    def __init__(
        self,
        name: str,
        params: ProductType,
        returns: AlgebraicType,
        typespace: Typespace,
        convert: Converter | None,
    ) -> None:
        super().__init__(name, params, None, typespace)
        self.returns = returns
        self.return_codec = codec(returns, typespace)
        self._convert = convert

    def decode_return(self, data: bytes) -> Any:
        value = self.return_codec.decode(data)
        return value if self._convert is None else self._convert(value)


_MISSING = object()


class ModuleSchema:
    """All tables and reducers of a module, as the client uses them."""

    def __init__(
        self,
        typespace: Typespace,
        tables: dict[str, TableSchema],
        reducers: dict[str, ReducerSchema],
        procedures: dict[str, ProcedureSchema] | None = None,
    ) -> None:
        self.typespace = typespace
        self.tables = tables
        self.reducers = reducers
        self.procedures = procedures or {}

    @classmethod
    def from_raw_v9(cls, raw: Mapping[str, Any], types: Mapping[str, type] | None = None) -> ModuleSchema:
        """Read RawModuleDef v9 JSON (bare, or wrapped as ``{"V9": ...}``).

        ``types`` maps type names (``RawTypeDefV9`` names, e.g. ``"User"``) to the classes values of that type
        become: NamedTuple classes for products, ``SumValue`` subclasses for sums (generated bindings pass
        theirs). Tables whose row type has no class get a namedtuple of their columns.
        """
        if "V9" in raw and len(raw) == 1:
            raw = raw["V9"]
        try:
            return _read(raw, dict(types or {}))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise SchemaError(f"malformed RawModuleDef v9: {type(exc).__name__}: {exc}") from None

    def table(self, name: str) -> TableSchema:
        return _named(self.tables, "table", name)

    def procedure(self, name: str) -> ProcedureSchema:
        return _named(self.procedures, "procedure", name)

    def reducer(self, name: str) -> ReducerSchema:
        return _named(self.reducers, "reducer", name)


def _named(items: Mapping[str, T], kind: str, name: str) -> T:
    try:
        return items[name]
    except KeyError:
        raise SchemaError(f"no {kind} {name!r} in the module ({kind}s: {', '.join(items)})") from None


def _read(raw: Mapping[str, Any], types: dict[str, type]) -> ModuleSchema:
    typespace = Typespace([type_from_json(t) for t in raw["typespace"]["types"]])
    classes: dict[int, type] = {}
    for entry in raw.get("types", []):
        name = ".".join([*entry["name"].get("scope", []), entry["name"]["name"]])
        if name in types:
            classes[int(entry["ty"])] = types[name]
    tables: dict[str, TableSchema] = {}
    row_types: dict[str, tuple[int, ProductType]] = {}
    entries = [*raw["tables"], *view_table_entries(raw, SchemaError)]  # views are cached like tables
    for entry in entries:
        ref = int(entry["product_type_ref"])
        row_type = typespace.resolve(RefType(ref))
        if not isinstance(row_type, ProductType):
            raise SchemaError(f"table {entry['name']}: its row type is not a product")
        row_types[entry["name"]] = (ref, row_type)
        if ref not in classes:
            fields = [python_name(e.name or f"col{i}") for i, e in enumerate(row_type.elements)]
            classes[ref] = namedtuple(_pascal(entry["name"]), fields)
    converters = _Converters(typespace, classes)
    for entry in entries:
        ref, row_type = row_types[entry["name"]]
        tables[entry["name"]] = _table(entry, ref, row_type, typespace, converters, classes[ref])
    reducers = {}
    for entry in raw["reducers"]:
        params = type_from_json({"Product": entry["params"]})
        assert isinstance(params, ProductType)
        lifecycle = _option(entry.get("lifecycle"))
        reducers[entry["name"]] = ReducerSchema(
            entry["name"], params, None if lifecycle is None else _variant(lifecycle)[0], typespace
        )
    procedures = {}
    for export in raw.get("misc_exports", []):
        kind, entry = _variant(export)
        if kind == "Procedure":
            params = type_from_json({"Product": entry["params"]})
            assert isinstance(params, ProductType)
            returns = type_from_json(entry["return_type"])
            procedures[entry["name"]] = ProcedureSchema(
                entry["name"], params, returns, typespace, converters.of(returns)
            )
    return ModuleSchema(typespace, tables, reducers, procedures)


def _table(
    entry: Mapping[str, Any],
    ref: int,
    row_type: ProductType,
    typespace: Typespace,
    converters: _Converters,
    row_class: type,
) -> TableSchema:
    primary = [int(c) for c in entry.get("primary_key", [])]
    unique_sets = set()
    for constraint in entry.get("constraints", []):
        kind, data = _variant(constraint["data"])
        if kind == "Unique":
            unique_sets.add(tuple(int(c) for c in data["columns"]))
    indexes = []
    seen = set()
    for index in entry.get("indexes", []):
        accessor = _option(index.get("accessor_name"))
        if accessor is None or accessor in seen:
            continue
        kind, payload = _variant(index["algorithm"])
        if isinstance(payload, Mapping):
            payload = payload.get("columns", [])
        columns = (int(payload),) if kind == "Direct" else tuple(int(c) for c in payload)
        seen.add(accessor)
        indexes.append(IndexSchema(accessor, columns, columns in unique_sets))
    # unique constraints without an index of their own still deserve a `find`
    for columns in sorted(unique_sets):
        if len(columns) == 1:
            name = row_type.elements[columns[0]].name or f"col{columns[0]}"
            if name not in seen and not any(i.columns == columns for i in indexes):
                seen.add(name)
                indexes.append(IndexSchema(name, columns, True))
    access, _ = _variant(entry.get("table_access", {"Public": []}))
    return TableSchema(
        name=entry["name"],
        row_type=row_type,
        product_type_ref=ref,
        primary_key=primary[0] if len(primary) == 1 else None,
        indexes=indexes,
        typespace=typespace,
        make_row=converters.ref(ref),
        row_class=row_class,
        is_public=access == "Public",
    )
