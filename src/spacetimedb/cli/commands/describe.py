"""``spacetime describe``: a database's schema (tables, reducers, types), readable or as JSON.

``--json`` prints the V10 definition (``?version=10``), as SpacetimeDB's CLI does. The readable form comes from
``GET /v1/database/NAME/schema?version=9``: RawModuleDef v9 in typed SATS-JSON, where an
option is ``{"some": x}`` / ``{"none": []}``, an enum value ``{"Variant": payload}``, and column types live in
the typespace (tables point at them with ``product_type_ref``; named types are listed in ``types``).
:class:`Schema` reads that JSON; ``call`` uses it too, for the hints on a wrong reducer name or arguments.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import click

from spacetimedb.cli.commands._database import DatabaseClient, database_argument, open_database
from spacetimedb.cli.context import CliContext, pass_cli
from spacetimedb.cli.errors import CliError
from spacetimedb.cli.options import anonymous_option, json_option, server_option

if TYPE_CHECKING:
    from spacetimedb.sats import AlgebraicType, ProductType

LIFECYCLES = {"Init": "init", "OnConnect": "client_connected", "OnDisconnect": "client_disconnected"}
ENTITY_KINDS = ("table", "reducer", "view")


@click.command("describe")
@database_argument()
@click.argument("entity", nargs=-1, metavar="[table|reducer|view ITEM]")
@json_option
@anonymous_option
@server_option
@pass_cli
def describe(
    cli: CliContext,
    database: str,
    entity: tuple[str, ...],
    as_json: bool,
    server: str | None,
    anonymous: bool,
) -> None:
    """Describe the schema of the database NAME, or one of its tables, reducers or views.

    Shows tables (columns and their types, primary key, indexes, constraints, access, schedule), reducers
    (parameters, lifecycle), views (rows, access, per caller or anonymous) and named types. --json prints the
    RawModuleDef V10 JSON as SpacetimeDB's CLI does (or the item's part of it).
    """
    kind, item = _parse_entity(entity)
    client = open_database(cli, server, database, anonymous)
    if as_json:
        _print_json(client, kind, item)
        return
    schema = Schema(client.schema())
    if kind is None:
        click.echo(schema.render(database))
        return
    assert item is not None
    lookups = {"table": schema.tables, "reducer": schema.reducers, "view": schema.views}
    found = next((entry for entry in lookups[kind]() if entry.get("name") == item), None)
    if found is None:
        _no_such(client, kind, item, [entry["name"] for entry in lookups[kind]()])
    if kind == "table":
        click.echo("\n".join(schema.render_table(found)))
    elif kind == "view":
        click.echo(schema.render_view(found))
    else:
        click.echo(schema.render_reducer(found))


def _no_such(client: DatabaseClient, kind: str, item: str, known: list[str]) -> NoReturn:
    raise CliError(
        f"database {client.shown} has no {kind} {item!r}",
        hint=f"its {kind}s: {', '.join(known)}" if known else f"it has no {kind}s",
    )


def _print_json(client: DatabaseClient, kind: str | None, item: str | None) -> None:
    """Upstream's ``describe --json`` (crates/cli/src/subcommands/describe.rs): the RawModuleDef V10 from
    ``/schema?version=10``, or the ``RawTableDefV10`` / ``RawReducerDefV10`` (or, ours, ``RawViewDefV10``) of
    the item with that canonical name."""
    raw = client.schema(version=10)
    if kind is None:
        click.echo(json.dumps(raw, indent=2))
        return
    assert item is not None
    section, explicit = V10_ITEMS[kind]
    canonical = _explicit_names(raw, explicit)
    entries = {
        canonical.get(entry["source_name"], entry["source_name"]): entry
        for entry in _section_payload(raw, section) or []
    }
    if item not in entries:
        _no_such(client, kind, item, list(entries))
    click.echo(json.dumps(entries[item], indent=2))


# the V10 section that lists each kind of item, and the kind of ExplicitNames entry naming it
V10_ITEMS = {"table": ("Tables", "Table"), "reducer": ("Reducers", "Function"), "view": ("Views", "Function")}


def _section_payload(raw: dict[str, Any], name: str) -> Any:
    """The payload of one section of RawModuleDef V10 JSON (None when the section is absent)."""
    for section in raw.get("sections", []):
        if isinstance(section, dict) and name in section:
            return section[name]
    return None


def _explicit_names(raw: dict[str, Any], kind: str) -> dict[str, str]:
    """Source (accessor) name -> canonical name, from the ExplicitNames section's entries of ``kind``."""
    names: dict[str, str] = {}
    for entry in (_section_payload(raw, "ExplicitNames") or {}).get("entries", []):
        mapping = entry.get(kind) if isinstance(entry, dict) else None
        if isinstance(mapping, dict):
            names[mapping["source_name"]] = mapping["canonical_name"]
    return names


def _parse_entity(entity: tuple[str, ...]) -> tuple[str | None, str | None]:
    if not entity:
        return None, None
    if len(entity) != 2:
        raise click.UsageError(
            "give nothing, or an item: `table TABLE_NAME`, `reducer REDUCER_NAME` or `view VIEW_NAME`"
        )
    kind, item = entity
    if kind not in ENTITY_KINDS:
        raise click.UsageError(f"the kind of item must be table, reducer or view, not {kind!r}")
    return kind, item


# ---- reading RawModuleDef v9 JSON ---------------------------------------------------------------------------------


def some(value: Any) -> Any:
    """The payload of a typed-JSON option (``{"some": x}`` -> x; ``{"none": []}`` or null -> None)."""
    if isinstance(value, dict) and "some" in value:
        return value["some"]
    return None


def variant(value: Any) -> tuple[str, Any]:
    """``{"Name": payload}`` -> ``("Name", payload)``."""
    if isinstance(value, dict) and len(value) == 1:
        ((name, payload),) = value.items()
        return str(name), payload
    return "?", value


@dataclass
class Column:
    name: str
    type: str
    notes: list[str]


class Schema:
    """RawModuleDef v9 JSON, with its types resolved and rendered readably."""

    def __init__(self, raw: dict[str, Any]) -> None:
        from spacetimedb.sats.meta import type_from_json

        self.raw = raw
        try:
            self.types: list[AlgebraicType] = [
                type_from_json(t) for t in raw.get("typespace", {}).get("types", [])
            ]
        except (KeyError, TypeError, ValueError) as error:
            raise CliError(
                f"the module definition from the server has an unreadable typespace: {error}"
            ) from None
        self.type_names: dict[int, str] = {}
        for type_def in raw.get("types", []):
            name = type_def.get("name", {})
            self.type_names[int(type_def.get("ty", -1))] = ".".join(
                [*name.get("scope", []), name.get("name", "?")]
            )

    # -- lookups --

    def tables(self) -> list[dict[str, Any]]:
        return list(self.raw.get("tables", []))

    def reducers(self) -> list[dict[str, Any]]:
        return list(self.raw.get("reducers", []))

    def views(self) -> list[dict[str, Any]]:
        exports = [variant(export) for export in self.raw.get("misc_exports", [])]
        return [view for kind, view in exports if kind == "View"]

    def table_names(self) -> list[str]:
        return [t["name"] for t in self.tables()]

    def reducer_names(self) -> list[str]:
        return [r["name"] for r in self.reducers()]

    def table(self, name: str) -> dict[str, Any] | None:
        return next((t for t in self.tables() if t.get("name") == name), None)

    def reducer(self, name: str) -> dict[str, Any] | None:
        return next((r for r in self.reducers() if r.get("name") == name), None)

    # -- types --

    def format(self, ty: AlgebraicType) -> str:
        from spacetimedb.module.pretty import format_type

        return format_type(ty, self.type_names.get)

    def row_type(self, table: dict[str, Any]) -> ProductType:
        from spacetimedb.sats import ProductType

        ref = int(table.get("product_type_ref", -1))
        row = self.types[ref] if 0 <= ref < len(self.types) else None
        if not isinstance(row, ProductType):
            raise CliError(
                f"the module definition from the server has no row type for table {table.get('name')!r}"
            )
        return row

    def params(self, reducer: dict[str, Any]) -> ProductType:
        from spacetimedb.sats import ProductType
        from spacetimedb.sats.meta import type_from_json

        params = type_from_json({"Product": reducer.get("params", {"elements": []})})
        assert isinstance(params, ProductType)
        return params

    # -- rendering --

    def render(self, database: str) -> str:
        lines = [f"Database {database}", ""]
        lines.append("Tables" if self.tables() else "Tables: none")
        for table in self.tables():
            lines += ["", *("  " + line for line in self.render_table(table))]
        lines += ["", "Reducers" if self.reducers() else "Reducers: none"]
        lines += ["  " + self.render_reducer(r) for r in self.reducers()]
        procedures = self.procedures()
        if procedures:
            lines += ["", "Procedures", *("  " + self.render_procedure(p) for p in procedures)]
        if self.views():
            lines += ["", "Views", *("  " + self.render_view(v) for v in self.views())]
        named = self._named_types()
        if named:
            lines += ["", "Types", *(f"  {name} = {text}" for name, text in named)]
        rls = [str(rule.get("sql", "")) for rule in self.raw.get("row_level_security", [])]
        if rls:
            lines += ["", "Row-level security", *(f"  {sql}" for sql in rls)]
        return "\n".join(lines)

    def render_table(self, table: dict[str, Any]) -> list[str]:
        access = variant(table.get("table_access"))[0].lower()
        kind = variant(table.get("table_type"))[0]
        header = f"{table['name']}  ({access}{', system' if kind == 'System' else ''})"
        lines = [header]
        schedule = some(table.get("schedule"))
        columns = self._columns(table)
        if isinstance(schedule, dict):
            at = self._column_name(columns, schedule.get("scheduled_at_column"))
            lines.append(f"  scheduled: calls reducer {schedule.get('reducer_name')} at each row's {at}")
        lines.append("  columns:")
        lines += _aligned([(c.name, c.type, ", ".join(c.notes)) for c in columns])
        indexes = [self._index(index, columns) for index in table.get("indexes", [])]
        if indexes:
            lines += ["  indexes:", *_aligned(indexes)]
        constraints = [self._constraint(c, columns) for c in table.get("constraints", [])]
        if constraints:
            lines += ["  constraints:", *_aligned(constraints)]
        return lines

    def render_reducer(self, reducer: dict[str, Any]) -> str:
        text = self.signature(reducer)
        lifecycle = some(reducer.get("lifecycle"))
        if lifecycle is not None:
            text += f"  (lifecycle: {LIFECYCLES.get(variant(lifecycle)[0], variant(lifecycle)[0])})"
        return text

    def procedures(self) -> list[dict[str, Any]]:
        """The ``Procedure`` entries of ``misc_exports``."""
        found = (variant(export) for export in self.raw.get("misc_exports", []))
        return [entry for kind, entry in found if kind == "Procedure" and isinstance(entry, dict)]

    def procedure(self, name: str) -> dict[str, Any] | None:
        return next((p for p in self.procedures() if p.get("name") == name), None)

    def render_procedure(self, procedure: dict[str, Any]) -> str:
        from spacetimedb.sats.meta import type_from_json

        returns = self.format(type_from_json(procedure.get("return_type", {"Product": {"elements": []}})))
        return f"{self.signature(procedure)} -> {returns}"

    def render_view(self, view: dict[str, Any]) -> str:
        from spacetimedb.sats.meta import type_from_json

        returns = self.format(type_from_json(view.get("return_type", {"Product": {"elements": []}})))
        access = "public" if view.get("is_public") else "private"
        caller = "the same for every caller" if view.get("is_anonymous") else "per caller"
        return f"{view['name']}() -> {returns}  ({access}, {caller})"

    def signature(self, reducer: dict[str, Any]) -> str:
        params = ", ".join(f"{e.name}: {self.format(e.type)}" for e in self.params(reducer).elements)
        return f"{reducer['name']}({params})"

    def _columns(self, table: dict[str, Any]) -> list[Column]:
        columns = [
            Column(name=e.name or f"column {i}", type=self.format(e.type), notes=[])
            for i, e in enumerate(self.row_type(table).elements)
        ]
        primary_key = set(table.get("primary_key", []))
        unique_single = {
            tuple(variant(c.get("data"))[1].get("columns", []))
            for c in table.get("constraints", [])
            if variant(c.get("data"))[0] == "Unique" and isinstance(variant(c.get("data"))[1], dict)
        }
        sequenced = {s.get("column") for s in table.get("sequences", [])}
        for position, column in enumerate(columns):
            if position in primary_key:
                column.notes.append("primary key")
            elif (position,) in unique_single:
                column.notes.append("unique")
            if position in sequenced:
                column.notes.append("auto-increment")
        return columns

    @staticmethod
    def _column_name(columns: list[Column], position: Any) -> str:
        if isinstance(position, int) and 0 <= position < len(columns):
            return columns[position].name
        return f"column {position}"

    def _index(self, index: dict[str, Any], columns: list[Column]) -> tuple[str, ...]:
        algorithm, payload = variant(index.get("algorithm"))
        positions = payload if isinstance(payload, list) else [payload]
        names = ", ".join(self._column_name(columns, p) for p in positions)
        name = some(index.get("name")) or "(unnamed)"
        accessor = some(index.get("accessor_name"))
        return (name, f"{algorithm.lower()} ({names})", f"accessor: {accessor}" if accessor else "")

    def _constraint(self, constraint: dict[str, Any], columns: list[Column]) -> tuple[str, ...]:
        kind, payload = variant(constraint.get("data"))
        positions = payload.get("columns", []) if isinstance(payload, dict) else []
        names = ", ".join(self._column_name(columns, p) for p in positions)
        return (some(constraint.get("name")) or "(unnamed)", f"{kind.lower()} ({names})")

    def _named_types(self) -> list[tuple[str, str]]:
        """Named types other than the tables' row types (those are shown as tables)."""
        from spacetimedb.module.pretty import format_type

        row_refs = {t.get("product_type_ref") for t in self.tables()}
        named = []
        for ref, name in sorted(self.type_names.items(), key=lambda item: item[1]):
            if ref in row_refs or not 0 <= ref < len(self.types):
                continue
            # Spell the type out (its own name would just repeat it); refs inside it still use names.
            named.append((name, format_type(self.types[ref], self.type_names.get)))
        return named


def _aligned(rows: list[tuple[str, ...]], indent: str = "    ") -> list[str]:
    """Rows of cells in left-aligned columns two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))] if rows else []
    return [
        (indent + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))).rstrip() for row in rows
    ]


def callable_reducers(raw: dict[str, Any]) -> list[str]:
    """The names of the reducers a client may call (lifecycle reducers may not be called)."""
    return [r["name"] for r in Schema(raw).reducers() if some(r.get("lifecycle")) is None]


def reducer_signature(raw: dict[str, Any], name: str) -> str | None:
    schema = Schema(raw)
    reducer = schema.reducer(name)
    return None if reducer is None else schema.signature(reducer)
