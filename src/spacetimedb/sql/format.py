"""psql-style text rendering of SQL results, as ``spacetime sql`` prints them.

Values: strings in double quotes, bytes / identities / connection ids as ``0x`` hex, timestamps RFC 3339
(``1970-01-01T00:00:00+00:00``), durations ``+1.500000``, uuids quoted, records and sums as
``(name = value, ...)`` / ``(variant = value)``, floats in shortest round-trip decimal form without exponent.

Tables: a header, a dashed rule with ``+`` at column boundaries, `` | `` between cells, no outer border;
trailing blanks are trimmed from each line.
"""

from __future__ import annotations

import datetime as dt
import math
import struct
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from spacetimedb.sats import (
    AlgebraicType,
    ArrayType,
    ConnectionId,
    Identity,
    PrimitiveType,
    ProductType,
    Some,
    SumType,
    SumValue,
    TimeDuration,
    Timestamp,
    Uuid,
    special_kind,
)
from spacetimedb.sats.json import json_codec
from spacetimedb.sats.meta import type_from_json
from spacetimedb.sats.types import U8

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def format_float(value: float, single: bool = False) -> str:
    """Rust's ``Display`` of f64 / f32: shortest round-trip digits, never an exponent."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    text = _shortest_f32(value) if single else repr(value)
    plain = format(Decimal(text), "f")
    if "." in plain:
        plain = plain.rstrip("0").rstrip(".")
    if plain in ("-0", ""):
        plain = "-0" if math.copysign(1.0, value) < 0 else "0"
    return plain


def _shortest_f32(value: float) -> str:
    target = struct.pack("<f", value)
    for digits in range(1, 10):
        text = f"{value:.{digits}g}"
        if struct.pack("<f", float(text)) == target:
            return text
    return repr(value)


def format_timestamp(ts: Timestamp) -> str:
    """chrono's ``to_rfc3339``: seconds, then 3, 6 or 9 fractional digits only when needed."""
    micros = ts.micros
    try:
        moment = _EPOCH + dt.timedelta(microseconds=micros)
    except OverflowError:
        return f"{micros}us since epoch"
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = micros % 1_000_000
    if fraction:
        text += f".{fraction // 1000:03d}" if fraction % 1000 == 0 else f".{fraction:06d}"
    return text + "+00:00"


def format_value(ty: AlgebraicType, value: Any) -> str:
    """One value as the SpacetimeDB CLI shows it."""
    if isinstance(ty, PrimitiveType):
        kind = ty.kind
        if kind == "Bool":
            return "true" if value else "false"
        if kind == "String":
            return f'"{value}"'
        if ty.is_float:
            return format_float(value, kind == "F32")
        return str(value)
    special = special_kind(ty)
    if special in ("identity", "connection_id"):
        assert isinstance(value, Identity | ConnectionId)
        return "0x" + value.to_hex()
    if special == "timestamp":
        return format_timestamp(value)
    if special == "time_duration":
        assert isinstance(value, TimeDuration)
        return str(value)
    if special == "uuid":
        assert isinstance(value, Uuid)
        h = value.to_hex()
        return f'"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"'
    if isinstance(ty, ArrayType):
        if ty.elem == U8:
            return "0x" + bytes(value).hex()
        return "[" + ", ".join(format_value(ty.elem, v) for v in value) + "]"
    if isinstance(ty, ProductType):
        return _record(
            [
                (e.name or f"col_{i}", e.type, v)
                for i, (e, v) in enumerate(zip(ty.elements, value, strict=True))
            ]
        )
    if isinstance(ty, SumType):
        return _sum(ty, value)
    return repr(value)


def _record(fields: list[tuple[str, AlgebraicType, Any]]) -> str:
    return "(" + ", ".join(f"{name} = {format_value(ty, v)}" for name, ty, v in fields) + ")"


def _sum(ty: SumType, value: Any) -> str:
    kind = special_kind(ty)
    if kind == "option":
        if value is None:
            return "(none = ())"
        inner = value.value if isinstance(value, Some) else value
        return _record([("some", ty.variants[0].type, inner)])
    tag, payload = value[0], value[1]
    variant = ty.variants[tag]
    return _record([(variant.name or f"col_{tag}", variant.type, payload)])


def render_table(schema: ProductType, rows: Sequence[Sequence[Any]]) -> str:
    """A psql-style table of ``rows`` (canonical values) under ``schema``'s column names."""
    if not schema.elements:
        return ""
    headers = [e.name if e.name is not None else f"column {i}" for i, e in enumerate(schema.elements)]
    formatters: list[Callable[[Any], str]] = [_formatter(e.type) for e in schema.elements]
    cells = [[fmt(v) for fmt, v in zip(formatters, row, strict=True)] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = [_line(headers, widths), "+".join("-" * (w + 2) for w in widths)]
    lines.extend(_line(r, widths) for r in cells)
    return "\n".join(lines)


def _formatter(ty: AlgebraicType) -> Callable[[Any], str]:
    return lambda v: format_value(ty, v)


def _line(cells: Sequence[str], widths: list[int]) -> str:
    return "|".join(f" {c.ljust(w)} " for c, w in zip(cells, widths, strict=True)).rstrip()


def format_duration_micros(micros: int) -> str:
    """Rust's ``{:.2?}`` of a Duration: ``1.00ms``, ``800.00µs``, ``2.50s``."""
    nanos = micros * 1000
    if nanos >= 1_000_000_000:
        return f"{nanos / 1e9:.2f}s"
    if nanos >= 1_000_000:
        return f"{nanos / 1e6:.2f}ms"
    if nanos >= 1000:
        return f"{nanos / 1e3:.2f}µs"
    return f"{nanos:.2f}ns"


def render_statement(
    schema: ProductType, rows: Sequence[Sequence[Any]], stats: dict[str, int] | None = None, micros: int = 0
) -> str:
    """One statement's table, followed (when ``stats`` is given) by ``(N rows) [inserted: 1, server: ..]``."""
    table = render_table(schema, rows)
    if stats is None:
        return table
    count = len(rows)
    info = [
        f"{label}: {stats.get(key, 0)}"
        for key, label in (
            ("rows_inserted", "inserted"),
            ("rows_deleted", "deleted"),
            ("rows_updated", "updated"),
        )
        if stats.get(key, 0)
    ]
    info.append(f"server: {format_duration_micros(micros)}")
    summary = f"({count} {'row' if count == 1 else 'rows'}) [{', '.join(info)}]"
    return f"{table}\n{summary}" if table else summary


_POW10 = [10.0**k for k in range(309)]


def read_f64_as_upstream_cli(value: float) -> float:
    """The f64 SpacetimeDB's CLI reads from the JSON text of ``value``.

    The server writes the shortest decimal that round-trips (``repr``); the CLI's JSON parser (serde_json without
    its ``float_roundtrip`` feature) reads it as ``digits as f64`` scaled by a power of ten, which may land one unit
    in the last place away. So upstream's ``spacetime sql`` shows ``-3454353.345389043`` for the f64 whose exact
    shortest form is ``-3454353.3453890434`` (its smoketest ``test_sql_format``, crates/smoketests/tests/cluster/
    sql.rs); the CLI here reads the same way, so that scripts see the same digits."""
    if not math.isfinite(value) or value == 0:
        return value
    mantissa, _, exponent_text = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0") or "0"
    exponent = int(exponent_text or 0) - len(fraction)
    if int(digits) >= 1 << 64:  # not what the shortest form of an f64 gives; read it exactly
        return value
    result = float(int(digits))
    while True:
        if abs(exponent) < len(_POW10):
            result = result * _POW10[exponent] if exponent >= 0 else result / _POW10[-exponent]
            break
        if result == 0.0 or exponent >= 0:
            return value
        result /= 1e308
        exponent += 308
    return math.copysign(result, value)


def _as_upstream_cli_reads(ty: AlgebraicType, value: Any) -> Any:
    """``value`` with every f64 in it replaced by ``read_f64_as_upstream_cli`` of it."""
    if isinstance(ty, PrimitiveType):
        return read_f64_as_upstream_cli(value) if ty.kind == "F64" else value
    if special_kind(ty) not in (None, "option"):
        return value
    if isinstance(ty, ArrayType):
        return [_as_upstream_cli_reads(ty.elem, v) for v in value] if ty.elem != U8 else value
    if isinstance(ty, ProductType):
        return tuple(_as_upstream_cli_reads(e.type, v) for e, v in zip(ty.elements, value, strict=True))
    if isinstance(ty, SumType):
        if special_kind(ty) == "option":
            if value is None:
                return None
            inner = ty.variants[0].type
            if isinstance(value, Some):
                return Some(_as_upstream_cli_reads(inner, value.value))
            return _as_upstream_cli_reads(inner, value)
        return SumValue(value[0], _as_upstream_cli_reads(ty.variants[value[0]].type, value[1]))
    return value


def render_sql_json(results: list[dict[str, Any]], with_stats: bool = False) -> str:
    """Render the JSON body of the ``/sql`` route (what the CLI receives) as the CLI prints it."""
    parts = []
    for result in results:
        schema = type_from_json({"Product": result["schema"]})
        assert isinstance(schema, ProductType)
        codec = json_codec(schema)
        rows = [_as_upstream_cli_reads(schema, codec.from_json(row)) for row in result["rows"]]
        stats = result.get("stats", {}) if with_stats else None
        parts.append(render_statement(schema, rows, stats, int(result.get("total_duration_micros", 0))))
    return "\n\n".join(parts)
