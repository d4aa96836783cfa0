"""From syntax to plans: name resolution, visibility, type checking, row-level security.

``compile`` handles every statement; ``compile_subscription`` additionally enforces what a subscription may
be (whole rows of one table, from one table or a join of two).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from spacetimedb.datastore import ST_ROW_LEVEL_SECURITY_ID, ST_VAR_ID, ColumnSchema, TableSchema
from spacetimedb.datastore.schema import ST_VAR_VALUE_TYPE
from spacetimedb.sats import BOOL, IDENTITY, U64, AlgebraicType, ArrayType, Identity, ProductType, SumValue
from spacetimedb.sats.types import U8

from . import ast
from . import expr as ex
from .errors import (
    SqlError,
    SqlNameError,
    SqlPermissionError,
    SqlTypeError,
    SqlUnsupportedError,
)
from .literals import is_comparable, is_equatable, type_name
from .params import Bindings
from .parser import parse
from .plan import (
    ColumnsOutput,
    CountOutput,
    DeletePlan,
    Fragment,
    InsertPlan,
    Plan,
    Reader,
    Relation,
    SelectPlan,
    SetVarPlan,
    StarOutput,
    UpdatePlan,
)

# The variables SET / SHOW know, and the st_var variant each is stored as (SpacetimeDB stores U64).
SYSTEM_VARIABLES = {"row_limit": ST_VAR_VALUE_TYPE.tag_of("U64")}
MAX_RLS_DEPTH = 16


@dataclass(frozen=True, slots=True)
class Caller:
    identity: Identity
    is_owner: bool


@dataclass(frozen=True, slots=True)
class Accessors:
    """The second names a module gives its tables, views and columns (their accessors in module code), which SQL
    accepts as well as the canonical names, as SpacetimeDB does: accessor -> canonical name."""

    tables: Mapping[str, str] = field(default_factory=dict)
    columns: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # by canonical table name

    def column(self, schema: TableSchema, name: str) -> ColumnSchema | None:
        """The column of ``schema`` with canonical name or accessor ``name``."""
        found = schema.find_column(name)
        if found is None:
            canonical = self.columns.get(schema.name, {}).get(name)
            found = schema.find_column(canonical) if canonical is not None else None
        return found


NO_ACCESSORS = Accessors()


class SchemaView:
    """The tables a caller may see, and the RLS rules that apply to it."""

    __slots__ = ("accessors", "bindings", "caller", "tx")

    def __init__(
        self,
        tx: Reader,
        caller: Caller,
        bindings: Bindings | None = None,
        accessors: Accessors = NO_ACCESSORS,
    ) -> None:
        self.tx = tx
        self.caller = caller
        self.bindings = bindings if bindings is not None else Bindings(())
        self.accessors = accessors

    def value(self, lit: ast.Literal, ty: AlgebraicType, label: str | None = None) -> Any:
        """The value of a literal or parameter at ``ty``."""
        return self.bindings.value(lit, ty, label)

    def column(self, schema: TableSchema, name: str) -> ColumnSchema | None:
        return self.accessors.column(schema, name)

    def scope(self) -> Scope:
        return Scope(self.accessors)

    def typer(self, scope: Scope) -> ExprTyper:
        return ExprTyper(scope, self.caller.identity, self.bindings)

    def table(self, name: str) -> TableSchema:
        table_id = self.tx.table_id(name)
        if table_id is None and name in self.accessors.tables:
            table_id = self.tx.table_id(self.accessors.tables[name])
        schema = self.tx.schema(table_id) if table_id is not None else None
        if schema is None or not (schema.public or self.caller.is_owner):
            message = f"no such table: `{name}`. If the table exists, it may be marked private."
            visible = [s.name for s in self.tx.schemas() if s.public or self.caller.is_owner]
            close = difflib.get_close_matches(name, visible, n=1)
            raise SqlNameError(f"{message} Did you mean `{close[0]}`?" if close else message)
        return schema

    def rls_rules(self, table_id: int) -> list[str]:
        if self.caller.is_owner:
            return []
        return rls_rules(self.tx, table_id)


def rls_rules(tx: Reader, table_id: int) -> list[str]:
    """The SQL of the row-level security rules declared for ``table_id``."""
    rls = tx.schema(ST_ROW_LEVEL_SECURITY_ID)
    index = rls.index_on((0,))
    if index is None:
        rows = [r for r in tx.scan(ST_ROW_LEVEL_SECURITY_ID) if r[0] == table_id]
    else:
        rows = tx.seek(ST_ROW_LEVEL_SECURITY_ID, index.index_id, table_id)
    return sorted(r[1] for r in rows)


# ---- scopes and expressions ------------------------------------------------------------------------------


class Scope:
    """The relations of a FROM clause, by the name queries use for them (alias, else table name)."""

    __slots__ = ("accessors", "names", "relations")

    def __init__(self, accessors: Accessors = NO_ACCESSORS) -> None:
        self.relations: list[Relation] = []
        self.names: dict[str, int] = {}
        self.accessors = accessors

    def add(self, ref: ast.TableRef, schema: TableSchema) -> int:
        var = ref.var
        if var in self.names:
            raise SqlNameError(f"Duplicate name `{var}`")
        self.names[var] = len(self.relations)
        self.relations.append(Relation(var, schema))
        return self.names[var]

    def column(self, col: ast.Column) -> ex.ColumnRef:
        if col.table is not None:
            rel = self.names.get(col.table)
            if rel is None:
                raise SqlNameError(f"`{col.table}` is not in scope")
            return self._column_of(rel, col.name)
        found = [
            k for k, r in enumerate(self.relations) if self.accessors.column(r.schema, col.name) is not None
        ]
        if not found:
            if len(self.relations) == 1:
                return self._column_of(0, col.name)
            raise SqlNameError(f"`{col.name}` is not a column of any table in the query")
        if len(found) > 1:
            raise SqlNameError(
                f"Column `{col.name}` is ambiguous: qualify it (names must be qualified when using joins)"
            )
        return self._column_of(found[0], col.name)

    def _column_of(self, rel: int, name: str) -> ex.ColumnRef:
        relation = self.relations[rel]
        column = self.accessors.column(relation.schema, name)
        if column is None:
            raise SqlNameError(f"`{relation.alias}` does not have a field `{name}`")
        return ex.ColumnRef(rel, column.pos, column.type, f"{relation.alias}.{name}")


class ExprTyper:
    """Types the expressions of one statement against a scope, for one caller (``:sender``)."""

    __slots__ = ("bindings", "caller", "scope")

    def __init__(self, scope: Scope, caller: Identity, bindings: Bindings) -> None:
        self.scope = scope
        self.caller = caller
        self.bindings = bindings

    def predicate(self, node: ast.Expr) -> ex.Pred:
        if isinstance(node, ast.And):
            return ex.Conj(tuple(self.predicate(item) for item in node.items))
        if isinstance(node, ast.Or):
            return ex.Disj(tuple(self.predicate(item) for item in node.items))
        if isinstance(node, ast.Not):
            return ex.Neg(self.predicate(node.item))
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Literal) and node.kind == "bool":
            return ex.Truth(node.text == "true")
        if isinstance(node, ast.Column):
            column = self.scope.column(node)
            if column.type != BOOL:
                raise SqlTypeError(
                    f"Column `{column.label}` of type `{type_name(column.type)}` cannot be used as a condition"
                )
            return ex.BoolColumn(column)
        raise SqlTypeError(f"Expected a condition, found `{node.to_sql()}`")

    def compare(self, node: ast.Compare) -> ex.Pred:
        left, right = node.left, node.right
        op = node.op
        if not isinstance(left, ast.Column) and isinstance(right, ast.Column):
            left, right, op = right, left, ex.FLIPPED[op]
        if not isinstance(left, ast.Column):
            raise SqlTypeError(
                f"Cannot resolve type for literal expression `{node.to_sql()}`: compare a column with a value"
            )
        column = self.scope.column(left)
        if isinstance(right, ast.Column):
            other = self.scope.column(right)
            if other.type != column.type:
                raise SqlTypeError(
                    f"Cannot compare `{column.label}` of type `{type_name(column.type)}` "
                    f"with `{other.label}` of type `{type_name(other.type)}`"
                )
            self._check_op(op, column)
            return ex.Cmp(op, column, other)
        value = self.param(right, column) if isinstance(right, ast.Param) else None
        if isinstance(right, ast.Literal):
            value = ex.Const(self.bindings.value(right, column.type, column.label), column.type)
        assert value is not None
        self._check_op(op, column)
        return ex.Cmp(op, column, value)

    def param(self, param: ast.Param, column: ex.ColumnRef) -> ex.Const:
        if param.name != "sender":
            raise SqlNameError(f"Unknown parameter `:{param.name}` (only `:sender` is supported)")
        if column.type == IDENTITY:
            return ex.Const(self.caller, IDENTITY)
        if column.type == ArrayType(U8):
            return ex.Const(self.caller.to_le_bytes(), column.type)
        raise SqlTypeError(
            f"The parameter `:sender` has type `Identity`, but `{column.label}` has type `{type_name(column.type)}`"
        )

    @staticmethod
    def _check_op(op: str, column: ex.ColumnRef) -> None:
        ty = column.type
        if is_comparable(ty) or (op in ("=", "<>") and is_equatable(ty)):
            return
        raise SqlTypeError(
            f"Invalid binary operator `{op}` for type `{type_name(ty)}` (column `{column.label}`)"
        )


# ---- SELECT ----------------------------------------------------------------------------------------------


def _from_clause(select: ast.Select, view: SchemaView) -> tuple[Scope, list[ex.Pred]]:
    scope = view.scope()
    scope.add(select.table, view.table(select.table.name))
    for join in select.joins:
        scope.add(join.table, view.table(join.table.name))
    typer = view.typer(scope)
    conjuncts: list[ex.Pred] = []
    for join in select.joins:
        if join.on is not None:
            conjuncts.extend(ex.conjuncts_of(typer.predicate(join.on)))
    if select.where is not None:
        conjuncts.extend(ex.conjuncts_of(typer.predicate(select.where)))
    return scope, conjuncts


def _output(select: ast.Select, scope: Scope) -> tuple[Any, ProductType, TableSchema | None]:
    projection = select.projection
    if isinstance(projection, ast.Star):
        if projection.table is None:
            if len(scope.relations) > 1:
                raise SqlUnsupportedError("SELECT * is not supported for joins: select `t.*` of one table")
            rel = 0
        else:
            found = scope.names.get(projection.table)
            if found is None:
                raise SqlNameError(f"`{projection.table}` is not in scope")
            rel = found
        schema = scope.relations[rel].schema
        return StarOutput(rel), schema.row_type, schema
    if isinstance(projection, ast.Count):
        name = projection.alias or "count"
        return CountOutput(name), ProductType.of((name, U64)), None
    columns = []
    names: list[str] = []
    for item in projection.items:
        column = scope.column(item.column)
        name = item.alias or item.column.name
        if name in names:
            raise SqlNameError(f"Duplicate name `{name}`")
        names.append(name)
        columns.append(column)
    out = ColumnsOutput(tuple(columns), tuple(names))
    return out, ProductType.of(*((n, c.type) for n, c in zip(names, columns, strict=True))), None


def _count_value(lit: ast.Literal, clause: str, view: SchemaView) -> int:
    try:
        return int(view.value(lit, U64))
    except SqlTypeError:
        raise SqlTypeError(
            f"The literal expression `{lit.to_sql()}` cannot be parsed as type `U64` ({clause})"
        ) from None


def _order_by(select: ast.Select, scope: Scope, out: Any) -> list[tuple[ex.ColumnRef, bool]]:
    if not select.order_by:
        return []
    if isinstance(out, CountOutput):
        raise SqlUnsupportedError("ORDER BY is not supported with COUNT(*)")
    items = []
    for item in select.order_by:
        column = None
        if item.column.table is None and isinstance(out, ColumnsOutput) and item.column.name in out.names:
            column = out.columns[out.names.index(item.column.name)]
        if column is None:
            column = scope.column(item.column)
        items.append((column, item.descending))
    return items


def compile_select(select: ast.Select, view: SchemaView) -> SelectPlan:
    scope, conjuncts = _from_clause(select, view)
    out, schema, return_table = _output(select, scope)
    order_by = _order_by(select, scope, out)
    limit = _count_value(select.limit, "LIMIT", view) if select.limit is not None else None
    offset = _count_value(select.offset, "OFFSET", view) if select.offset is not None else 0
    fragment = Fragment(
        tuple(scope.relations), tuple(conjuncts), out.rel if isinstance(out, StarOutput) else 0
    )
    fragments = expand_rls(fragment, view)
    return SelectPlan(
        fragments,
        out,
        schema,
        order_by,
        limit,
        offset,
        check_row_limit=not view.caller.is_owner,
        return_table=return_table,
        statement=select,
    )


def compile_union(union: ast.Union, view: SchemaView) -> SelectPlan:
    """``UNION ALL`` of whole-row selects of one table (the fragments are concatenated, duplicates kept), or
    ``UNION`` of single-table selects of one table (one fragment: the OR of the branches' conditions, which
    is the set union because a table holds each row once)."""
    for select in union.selects:
        if not isinstance(select.projection, ast.Star):
            raise SqlUnsupportedError(
                "Unsupported: UNION branches must select whole rows (`*` or `t.*`) of one table"
            )
        if select.order_by or select.limit is not None or select.offset is not None:
            raise SqlUnsupportedError("Unsupported: ORDER BY, LIMIT and OFFSET with UNION")
    if union.distinct:
        fragment, schema = _union_as_disjunction(union, view)
        fragments = expand_rls(fragment, view)
    else:
        plans = [compile_select(select, view) for select in union.selects]
        schema = plans[0].return_table  # type: ignore[assignment]  # checked just below: every branch returns a table
        if any(p.return_table is None or p.return_table.table_id != schema.table_id for p in plans):
            raise SqlUnsupportedError(
                "Unsupported: UNION branches must select whole rows (`*` or `t.*`) of one table"
            )
        fragments = [fragment for plan in plans for fragment in plan.fragments]
    return SelectPlan(
        fragments,
        StarOutput(0),
        schema.row_type,
        check_row_limit=not view.caller.is_owner,
        return_table=schema,
        statement=union,
    )


def _union_as_disjunction(union: ast.Union, view: SchemaView) -> tuple[Fragment, TableSchema]:
    first = union.selects[0]
    if any(select.joins or select.table.name != first.table.name for select in union.selects):
        raise SqlUnsupportedError(
            "Unsupported: UNION of joins or of different tables (UNION ALL keeps duplicates and supports them)"
        )
    schema = view.table(first.table.name)
    alternatives: list[ex.Pred] = []
    for select in union.selects:
        scope = view.scope()
        scope.add(select.table, schema)
        _output(select, scope)  # checks that `t.*` names this branch's table
        preds = ex.conjuncts_of(view.typer(scope).predicate(select.where)) if select.where else []
        alternatives.append(_all_of(preds))
    return Fragment((Relation(first.table.var, schema),), (ex.Disj(tuple(alternatives)),)), schema


def _all_of(preds: list[ex.Pred]) -> ex.Pred:
    if not preds:
        return ex.Truth(True)
    return preds[0] if len(preds) == 1 else ex.Conj(tuple(preds))


# ---- row-level security ----------------------------------------------------------------------------------


def expand_rls(
    fragment: Fragment,
    view: SchemaView,
    keep: frozenset[int] = frozenset(),
    resolving: tuple[int, ...] = (),
) -> list[Fragment]:
    """Replace every relation (except those in ``keep``) whose table has RLS rules by the union of its rules.

    Each rule becomes its own fragment (so the result is a union, duplicates kept, as in SpacetimeDB). The
    relations of the original fragment keep their positions; a rule's extra relations are appended."""
    fragments = [fragment]
    for rel in range(len(fragment.relations)):
        if rel in keep:
            continue
        relation = fragment.relations[rel]
        rules = view.rls_rules(relation.table_id)
        if not rules:
            continue
        if relation.table_id in resolving or len(resolving) >= MAX_RLS_DEPTH:
            raise SqlError(f"Cycle detected in the row-level security rules of `{relation.schema.name}`")
        expanded: list[Fragment] = []
        for rule in rules:
            rule_fragment = _compile_rule(rule, relation.schema, view)
            expanded.extend(
                expand_rls(
                    rule_fragment, view, frozenset({rule_fragment.ret}), resolving + (relation.table_id,)
                )
            )
        fragments = [_splice(f, rel, r) for f in fragments for r in expanded]
    return fragments


def _compile_rule(sql: str, table: TableSchema, view: SchemaView) -> Fragment:
    try:
        statement = parse(sql)
        if not isinstance(statement, ast.Select) or isinstance(statement.projection, ast.Columns | ast.Count):
            raise SqlUnsupportedError("a rule must select whole rows of its table")
        scope, conjuncts = _from_clause(statement, view)
        out, _, return_table = _output(statement, scope)
    except SqlError as exc:
        raise SqlError(f"Invalid row-level security rule for `{table.name}` ({sql}): {exc}") from None
    if return_table is None or return_table.table_id != table.table_id:
        raise SqlError(
            f"Invalid row-level security rule for `{table.name}` ({sql}): it returns another table"
        )
    return Fragment(tuple(scope.relations), tuple(conjuncts), out.rel)


def _splice(base: Fragment, rel: int, rule: Fragment) -> Fragment:
    """``base`` with relation ``rel`` restricted by ``rule`` (whose return relation is the same table)."""
    mapping: dict[int, int] = {rule.ret: rel}
    relations = list(base.relations)
    for k, relation in enumerate(rule.relations):
        if k != rule.ret:
            mapping[k] = len(relations)
            relations.append(Relation(f"{relation.alias}#rls{len(relations)}", relation.schema))
    conjuncts = base.conjuncts + tuple(ex.remap(p, mapping) for p in rule.conjuncts)
    return Fragment(tuple(relations), conjuncts, base.ret)


# ---- DML, SET, SHOW --------------------------------------------------------------------------------------


def _writable(name: str, view: SchemaView) -> TableSchema:
    schema = view.table(name)
    if schema.is_system:
        raise SqlPermissionError(f"Cannot modify system table `{schema.name}`")
    return schema


def compile_insert(insert: ast.Insert, view: SchemaView) -> InsertPlan:
    schema = _writable(insert.table, view)
    ncols = len(schema.columns)
    if insert.columns is None:
        positions = list(range(ncols))
    else:
        positions = []
        for name in insert.columns:
            column = view.column(schema, name)
            if column is None:
                raise SqlNameError(f"`{schema.name}` does not have a field `{name}`")
            if column.pos in positions:
                raise SqlNameError(f"Duplicate name `{name}`")
            positions.append(column.pos)
    auto_inc = {seq.col_pos for seq in schema.sequences}
    missing = [c for c in range(ncols) if c not in positions and c not in auto_inc]
    if missing:
        raise SqlTypeError(
            f"The number of fields ({len(positions)}) in the INSERT does not match the number of columns "
            f"({ncols}) of the table `{schema.name}` (missing: "
            + ", ".join(f"`{schema.columns[c].name}`" for c in missing)
            + ")"
        )
    rows = []
    for values in insert.rows:
        if len(values) != len(positions):
            raise SqlTypeError(
                f"Inserting a row with {len(values)} values into `{schema.name}` which has {len(positions)} fields"
            )
        row: list[Any] = [0] * ncols  # omitted columns are auto-increment: 0 asks for the next value
        for pos, lit in zip(positions, values, strict=True):
            column = schema.columns[pos]
            row[pos] = view.value(lit, column.type, f"{schema.name}.{column.name}")
        rows.append(tuple(row))
    return InsertPlan(schema, rows, insert)


def _single_table_filter(
    name: str, where: ast.Expr | None, view: SchemaView
) -> tuple[TableSchema, Fragment, Scope]:
    schema = _writable(name, view)
    scope = view.scope()
    scope.add(ast.TableRef(name), schema)
    conjuncts: list[ex.Pred] = []
    if where is not None:
        conjuncts = ex.conjuncts_of(view.typer(scope).predicate(where))
    return schema, Fragment(tuple(scope.relations), tuple(conjuncts)), scope


def compile_update(update: ast.Update, view: SchemaView) -> UpdatePlan:
    schema, fragment, _ = _single_table_filter(update.table, update.where, view)
    assignments: list[tuple[int, Any]] = []
    for assignment in update.assignments:
        column = view.column(schema, assignment.column)
        if column is None:
            raise SqlNameError(f"`{schema.name}` does not have a field `{assignment.column}`")
        if any(pos == column.pos for pos, _ in assignments):
            raise SqlNameError(f"Duplicate name `{assignment.column}`")
        value = view.value(assignment.value, column.type, f"{schema.name}.{column.name}")
        assignments.append((column.pos, value))
    return UpdatePlan(schema, fragment, assignments, update)


def compile_delete(delete: ast.Delete, view: SchemaView) -> DeletePlan:
    schema, fragment, _ = _single_table_filter(delete.table, delete.where, view)
    return DeletePlan(schema, fragment, delete)


def _check_variable(name: str) -> None:
    if name not in SYSTEM_VARIABLES:
        raise SqlNameError(f"{name} is not a valid system variable")


def compile_set(statement: ast.SetVar, view: SchemaView) -> SetVarPlan:
    _check_variable(statement.name)
    if statement.value.kind != "number":
        raise SqlTypeError(
            f"The literal expression `{statement.value.to_sql()}` cannot be parsed as type `U64` "
            f"(variable `{statement.name}`)"
        )
    value = view.value(statement.value, U64, statement.name)
    return SetVarPlan(statement.name, SumValue(SYSTEM_VARIABLES[statement.name], value), statement)


def compile_show(statement: ast.ShowVar, view: SchemaView) -> SelectPlan:
    _check_variable(statement.name)
    schema = view.tx.schema(ST_VAR_ID)
    name_col, value_col = schema.columns[0], schema.columns[1]
    name_ref = ex.ColumnRef(0, name_col.pos, name_col.type, f"st_var.{name_col.name}")
    value_ref = ex.ColumnRef(0, value_col.pos, value_col.type, f"st_var.{value_col.name}")
    fragment = Fragment(
        (Relation("st_var", schema),), (ex.Cmp("=", name_ref, ex.Const(statement.name, name_col.type)),)
    )
    return SelectPlan(
        [fragment],
        ColumnsOutput((value_ref,), ("value",)),
        ProductType.of(("value", value_col.type)),
        statement=statement,
    )


# ---- entry points ----------------------------------------------------------------------------------------


def compile_statement(
    statement: ast.Statement,
    tx: Reader,
    caller: Identity,
    is_owner: bool,
    bindings: Bindings | None = None,
    accessors: Accessors = NO_ACCESSORS,
) -> Plan:
    """Compile one statement for ``caller``; ``bindings`` holds its ``$n`` parameters (none by default),
    ``accessors`` the module's second names for its tables and columns."""
    view = SchemaView(tx, Caller(caller, is_owner), bindings, accessors)
    if isinstance(statement, ast.Select):
        return compile_select(statement, view)
    if isinstance(statement, ast.Union):
        return compile_union(statement, view)
    if isinstance(statement, ast.ShowVar):
        return compile_show(statement, view)
    if not is_owner:
        raise SqlPermissionError(f"Caller {caller.to_hex()} is not authorized to run SQL DML statements")
    if isinstance(statement, ast.Insert):
        return compile_insert(statement, view)
    if isinstance(statement, ast.Update):
        return compile_update(statement, view)
    if isinstance(statement, ast.Delete):
        return compile_delete(statement, view)
    return compile_set(statement, view)


def compile(text: str | ast.Statement, tx: Reader, caller: Identity, is_owner: bool) -> Plan:
    """Parse (unless given a statement) and compile one statement for ``caller``."""
    statement = parse(text) if isinstance(text, str) else text
    return compile_statement(statement, tx, caller, is_owner)


def compile_subscription(
    text: str, tx: Reader, caller: Identity, is_owner: bool, accessors: Accessors = NO_ACCESSORS
) -> SelectPlan:
    """Compile a subscription query: ``SELECT * FROM t [WHERE ...]`` or ``SELECT t.* FROM t JOIN u ON ...
    [WHERE ...]`` (whole rows of one table, at most two tables), or a UNION / UNION ALL of those returning
    the same table. Index requirements of joins are checked by the subscription engine, which knows how it
    will evaluate them."""
    statement = parse(text)
    if isinstance(statement, ast.Union):
        for select in statement.selects:
            _check_subscribable(select)
        return compile_union(statement, SchemaView(tx, Caller(caller, is_owner), accessors=accessors))
    if not isinstance(statement, ast.Select):
        raise SqlUnsupportedError("Unsupported: Non-SELECT queries in subscriptions")
    _check_subscribable(statement)
    return compile_select(statement, SchemaView(tx, Caller(caller, is_owner), accessors=accessors))


def _check_subscribable(statement: ast.Select) -> None:
    if not isinstance(statement.projection, ast.Star):
        raise SqlUnsupportedError(
            "Column projections are not supported in subscriptions; Subscriptions must return a table type"
        )
    for clause, present in (
        ("ORDER BY", bool(statement.order_by)),
        ("LIMIT", statement.limit is not None),
        ("OFFSET", statement.offset is not None),
    ):
        if present:
            raise SqlUnsupportedError(f"Unsupported: {clause} in subscriptions")
    if len(statement.joins) > 1:
        raise SqlUnsupportedError(
            f"Subscriptions support at most two tables (a filter or a join of two), found {len(statement.joins) + 1}"
        )
    if statement.joins and statement.joins[0].on is None:
        raise SqlUnsupportedError("Subscriptions require indexes on join columns (a JOIN needs ON a.x = b.y)")
