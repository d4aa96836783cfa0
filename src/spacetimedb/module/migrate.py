"""Schema migrations between two module definitions, and the first-publish path.

``plan_migration(old, new)`` compares two definitions and lists the steps of an *automatic* migration, or every
change that cannot be made automatically (``MigrationPlan.incompatible``, one human sentence each).

Automatic, as SpacetimeDB's auto-migration (crates/schema/src/auto_migrate.rs): add a table; remove a table (only
if it is empty when applied); add or remove an index; add a unique constraint (refused when applied if the rows
repeat a key) or remove one; change or remove the primary key; add AutoInc (refused when applied if the column
already holds values in the sequence's range) or remove it; add variants at the end of a sum type a column uses;
make a table public or private; add or remove a schedule; add columns at the end of a table when they have a
default; add or remove reducers; add, remove or change views; change row-level security rules. Removing a table,
adding columns, changing an event table's columns, changing rules, removing a view and changing the columns of
a view's rows (or whether it is anonymous) break clients' caches, so such plans also say "disconnect all
clients" (upstream's ``ensure_disconnect_all_users``).

Everything else needs a manual migration: removing, reordering or otherwise retyping a column, adding a column
without a default, removing or renaming a variant, turning a table into an event table or back.

``apply_migration(tx, plan)`` runs the steps in one transaction (removals before additions). A table's row
layout never changes in place in the datastore, so adding columns rebuilds the table under the same name: its
rows are copied with the new columns' defaults and its sequences continue where they were.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from spacetimedb import datastore as ds
from spacetimedb.datastore import MutTx
from spacetimedb.sats import AlgebraicType
from spacetimedb.sats.meta import type_from_bsatn, type_to_bsatn
from spacetimedb.sats.types import reads_as

from .errors import MigrationError
from .moduledef import ModuleDef, TableDef
from .pretty import format_type
from .views import ViewDef

REMOVE_INDEX = "remove_index"
REMOVE_CONSTRAINT = "remove_constraint"
REMOVE_SEQUENCE = "remove_sequence"
REMOVE_SCHEDULE = "remove_schedule"
REMOVE_ROW_LEVEL_SECURITY = "remove_row_level_security"
REMOVE_TABLE = "remove_table"
REMOVE_REDUCER = "remove_reducer"
ADD_COLUMNS = "add_columns"
RESCHEMA_EVENT_TABLE = "reschema_event_table"
ADD_TABLE = "add_table"
ADD_INDEX = "add_index"
ADD_CONSTRAINT = "add_constraint"
ADD_SEQUENCE = "add_sequence"
CHANGE_COLUMN_TYPES = "change_column_types"
CHANGE_PRIMARY_KEY = "change_primary_key"
ADD_SCHEDULE = "add_schedule"
ADD_ROW_LEVEL_SECURITY = "add_row_level_security"
CHANGE_ACCESS = "change_access"
CHANGE_INDEX_ACCESSOR = "change_index_accessor"
ADD_REDUCER = "add_reducer"
REMOVE_PROCEDURE = "remove_procedure"
ADD_PROCEDURE = "add_procedure"
REMOVE_HTTP_HANDLER = "remove_http_handler"
ADD_HTTP_HANDLER = "add_http_handler"
REMOVE_HTTP_ROUTE = "remove_http_route"
ADD_HTTP_ROUTE = "add_http_route"
REMOVE_VIEW = "remove_view"
ADD_VIEW = "add_view"
CHANGE_VIEW = "change_view"
REPLACE_VIEW = (
    "replace_view"  # a change its subscribers' clients cannot follow (upstream: AddView + RemoveView)
)
DISCONNECT_ALL_CLIENTS = "disconnect_all_clients"

# Execution order: every removal before any addition, so that re-creating something under the same name works.
STEP_ORDER = (
    REMOVE_CONSTRAINT,
    REMOVE_INDEX,
    REMOVE_SEQUENCE,
    REMOVE_SCHEDULE,
    REMOVE_ROW_LEVEL_SECURITY,
    REMOVE_TABLE,
    REMOVE_REDUCER,
    REMOVE_PROCEDURE,
    REMOVE_HTTP_ROUTE,
    REMOVE_HTTP_HANDLER,
    ADD_COLUMNS,
    RESCHEMA_EVENT_TABLE,
    CHANGE_COLUMN_TYPES,
    ADD_TABLE,
    ADD_INDEX,
    ADD_CONSTRAINT,
    ADD_SEQUENCE,
    CHANGE_PRIMARY_KEY,
    ADD_SCHEDULE,
    ADD_ROW_LEVEL_SECURITY,
    CHANGE_ACCESS,
    CHANGE_INDEX_ACCESSOR,
    ADD_REDUCER,
    ADD_PROCEDURE,
    ADD_HTTP_HANDLER,
    ADD_HTTP_ROUTE,
    REMOVE_VIEW,
    ADD_VIEW,
    CHANGE_VIEW,
    REPLACE_VIEW,
    DISCONNECT_ALL_CLIENTS,
)
# views store nothing: adding, removing or changing one writes nothing (subscribers of a changed view get its new
# result, or an error if its rows changed type)
_VIEW_STEPS = (REMOVE_VIEW, ADD_VIEW, CHANGE_VIEW, REPLACE_VIEW)
_RANK = {kind: i for i, kind in enumerate(STEP_ORDER)}
# steps that change only code, never what the database stores
_CODE_ONLY = (
    ADD_REDUCER,
    REMOVE_REDUCER,
    ADD_PROCEDURE,
    REMOVE_PROCEDURE,
    ADD_HTTP_HANDLER,
    REMOVE_HTTP_HANDLER,
    ADD_HTTP_ROUTE,
    REMOVE_HTTP_ROUTE,
    CHANGE_INDEX_ACCESSOR,
    *_VIEW_STEPS,
)


@dataclass(frozen=True, slots=True)
class MigrationStep:
    kind: str  # one of STEP_ORDER
    table: str | None = None
    subject: str | None = None  # index name, reducer name, SQL text, added column names, ...
    text: str = ""  # what it does, in one sentence

    def sort_key(self) -> tuple[int, str, str]:
        return (_RANK[self.kind], self.table or "", self.subject or "")


@dataclass(eq=False)
class MigrationPlan:
    old: ModuleDef
    new: ModuleDef
    steps: list[MigrationStep] = field(default_factory=list)
    incompatible: list[str] = field(default_factory=list)

    @property
    def is_automatic(self) -> bool:
        return not self.incompatible

    @property
    def disconnects_clients(self) -> bool:
        return any(s.kind == DISCONNECT_ALL_CLIENTS for s in self.steps)

    @property
    def changes_schema(self) -> bool:
        """Whether applying the plan writes anything (reducer-only changes do not)."""
        return any(s.kind not in _CODE_ONLY for s in self.steps)

    def pretty(self, color: bool = False) -> str:
        return _PlanFormatter(self, color).render()

    def __str__(self) -> str:
        return self.pretty()


# ---- planning ----------------------------------------------------------------------------------------------------


def plan_migration(old: ModuleDef, new: ModuleDef) -> MigrationPlan:
    """The steps from ``old`` to ``new``, or (in ``incompatible``) every change that needs a manual migration."""
    plan = MigrationPlan(old, new)
    for name in sorted(old.tables.keys() - new.tables.keys()):
        plan.steps.append(MigrationStep(REMOVE_TABLE, name, None, f"Removed table {name} (it must be empty)"))
    for name in sorted(new.tables.keys() - old.tables.keys()):
        table = new.tables[name]
        plan.steps.append(MigrationStep(ADD_TABLE, name, None, f"Created table {name} ({_access(table)})"))
    for name in sorted(old.tables.keys() & new.tables.keys()):
        _plan_table(plan, old.tables[name], new.tables[name])
    _plan_reducers(plan)
    _plan_views(plan)
    _plan_row_level_security(plan)
    if any(
        s.kind
        in (
            REMOVE_TABLE,
            ADD_COLUMNS,
            RESCHEMA_EVENT_TABLE,
            ADD_ROW_LEVEL_SECURITY,
            REMOVE_ROW_LEVEL_SECURITY,
            REMOVE_VIEW,
            REPLACE_VIEW,
        )
        for s in plan.steps
    ):
        plan.steps.append(
            MigrationStep(
                DISCONNECT_ALL_CLIENTS, text="All clients will be disconnected (breaking schema changes)"
            )
        )
    plan.steps.sort(key=MigrationStep.sort_key)
    return plan


def _access(table: TableDef) -> str:
    return "public" if table.public else "private"


def _cols(table: TableDef, cols: tuple[int, ...]) -> str:
    return "[" + ", ".join(table.column_names(cols)) + "]"


def _row_shape(table: TableDef) -> list[tuple[str, AlgebraicType]]:
    return [(c.name, c.type) for c in table.columns]


def _plan_table(plan: MigrationPlan, old: TableDef, new: TableDef) -> None:
    name = old.name
    incompatible = plan.incompatible
    if old.is_event and new.is_event and _row_shape(old) != _row_shape(new):
        # an event table stores no rows, so any new layout will do (upstream's ReschemaEventTable); clients'
        # code for the old one breaks, hence a disconnect
        plan.steps.append(
            MigrationStep(RESCHEMA_EVENT_TABLE, name, None, f"Changed the schema of event table {name}")
        )
        return
    added = _plan_columns(plan, old, new)
    if old.is_event != new.is_event:
        now = "an event table" if new.is_event else "a stored table"
        incompatible.append(f"Changing table {name} into {now} requires a manual migration")
    if old.primary_key != new.primary_key:
        was = "none" if old.primary_key is None else old.columns[old.primary_key].name
        now = "none" if new.primary_key is None else new.columns[new.primary_key].name
        plan.steps.append(
            MigrationStep(
                CHANGE_PRIMARY_KEY, name, now, f"Changed the primary key of table {name} ({was} → {now})"
            )
        )
    _plan_constraints(plan, old, new)
    _plan_sequences(plan, old, new)
    _plan_indexes(plan, old, new)
    if old.public != new.public:
        plan.steps.append(
            MigrationStep(
                CHANGE_ACCESS,
                name,
                _access(new),
                f"Changed access for table {name} ({_access(old)} → {_access(new)})",
            )
        )
    if old.schedule != new.schedule:
        if old.schedule is not None:
            plan.steps.append(
                MigrationStep(
                    REMOVE_SCHEDULE, name, old.schedule.reducer_name,
                    f"Removed schedule for table {name} calling reducer {old.schedule.reducer_name}",
                )
            )  # fmt: skip
        if new.schedule is not None:
            plan.steps.append(
                MigrationStep(
                    ADD_SCHEDULE, name, new.schedule.reducer_name,
                    f"Created schedule for table {name} calling reducer {new.schedule.reducer_name}",
                )
            )  # fmt: skip
    if added:
        columns = ", ".join(c for c in added)
        plan.steps.append(
            MigrationStep(ADD_COLUMNS, name, columns, f"Added column(s) {columns} to table {name}")
        )


def _plan_columns(plan: MigrationPlan, old: TableDef, new: TableDef) -> list[str]:
    """Check the columns of a kept table; returns the names of columns added (with defaults) at the end."""
    name = old.name
    incompatible = plan.incompatible
    new_by_name = {c.name: c for c in new.columns}
    old_names = {c.name for c in old.columns}
    reordered = False
    retyped: list[str] = []
    for column in old.columns:
        replacement = new_by_name.get(column.name)
        if replacement is None:
            incompatible.append(
                f"Removing the column {column.name} from table {name} requires a manual migration"
            )
            continue
        if replacement.pos != column.pos:
            reordered = True
        if replacement.type != column.type and reads_as(column.type, replacement.type):
            retyped.append(column.name)
        elif replacement.type != column.type:
            incompatible.append(
                f"Changing the type of column {column.name} in table {name} from {format_type(column.type)} "
                f"to {format_type(replacement.type)} requires a manual migration"
            )
    if reordered:
        incompatible.append(f"Reordering the columns of table {name} requires a manual migration")
    if retyped:
        columns = ", ".join(retyped)
        plan.steps.append(
            MigrationStep(
                CHANGE_COLUMN_TYPES, name, columns, f"Changed the type of column(s) {columns} of table {name}"
            )
        )
    added = []
    for column in new.columns:
        if column.name in old_names:
            continue
        if not column.has_default:
            incompatible.append(
                f"Adding the column {column.name} to table {name} requires a default value "
                f"(e.g. `{column.name}: ... = <default>`)"
            )
        added.append(column.name)
    return added


def _unique_backing(table: TableDef) -> dict[tuple[str, ...], str]:
    """Each unique column set of ``table`` (by column names) and the name of the index that backs it."""
    backing = {}
    for cols in table.unique_column_sets():
        index = next((i.name for i in table.indexes if i.columns == cols and i.unique), "")
        backing[tuple(table.column_names(cols))] = index
    return backing


def _plan_constraints(plan: MigrationPlan, old: TableDef, new: TableDef) -> None:
    """Unique constraints by column names; one whose backing index is replaced goes away with that index and is
    added again on the new one."""
    name = old.name
    old_unique, new_unique = _unique_backing(old), _unique_backing(new)
    for kind, verb, these, others in (
        (REMOVE_CONSTRAINT, "Removed the", old_unique, new_unique),
        (ADD_CONSTRAINT, "Added a", new_unique, old_unique),
    ):
        for cols, index_name in sorted(these.items()):
            if others.get(cols) != index_name:
                columns = ", ".join(cols)
                text = f"{verb} unique constraint on [{columns}] of table {name}"
                plan.steps.append(MigrationStep(kind, name, columns, text))


def _plan_sequences(plan: MigrationPlan, old: TableDef, new: TableDef) -> None:
    name = old.name
    old_seqs = {old.columns[s.column].name for s in old.sequences}
    new_seqs = {new.columns[s.column].name for s in new.sequences}
    for column in sorted(old_seqs - new_seqs):
        plan.steps.append(
            MigrationStep(
                REMOVE_SEQUENCE, name, column, f"Removed AutoInc from column {column} of table {name}"
            )
        )
    for column in sorted(new_seqs - old_seqs):
        plan.steps.append(
            MigrationStep(ADD_SEQUENCE, name, column, f"Added AutoInc to column {column} of table {name}")
        )


def _plan_indexes(plan: MigrationPlan, old: TableDef, new: TableDef) -> None:
    name = old.name
    old_indexes = {i.name: i for i in old.indexes}
    new_indexes = {i.name: i for i in new.indexes}
    for index_name in sorted(old_indexes.keys() - new_indexes.keys()):
        index = old_indexes[index_name]
        plan.steps.append(
            MigrationStep(
                REMOVE_INDEX,
                name,
                index_name,
                f"Removed index {index_name} on {_cols(old, index.columns)} of table {name}",
            )
        )
    for index_name in sorted(new_indexes.keys() - old_indexes.keys()):
        index = new_indexes[index_name]
        plan.steps.append(
            MigrationStep(
                ADD_INDEX,
                name,
                index_name,
                f"Created index {index_name} on {_cols(new, index.columns)} of table {name}",
            )
        )
    for index_name in sorted(old_indexes.keys() & new_indexes.keys()):
        was, now = old_indexes[index_name].accessor_name, new_indexes[index_name].accessor_name
        if was != now:
            plan.steps.append(
                MigrationStep(
                    CHANGE_INDEX_ACCESSOR,
                    name,
                    index_name,
                    f"Renamed the accessor of index {index_name} from {was} to {now}",
                )
            )


def _plan_views(plan: MigrationPlan) -> None:
    old, new = plan.old.views, plan.new.views
    for name in sorted(old.keys() - new.keys()):
        plan.steps.append(MigrationStep(REMOVE_VIEW, None, name, f"Removed view {name}"))
    for name in sorted(new.keys() - old.keys()):
        plan.steps.append(MigrationStep(ADD_VIEW, None, name, f"Created view {name}"))
    for name in sorted(old.keys() & new.keys()):
        before, after = old[name], new[name]
        if (
            before.anonymous != after.anonymous
            or before.primary_key_name != after.primary_key_name
            or not reads_as(before.row_type, after.row_type)
        ):
            # upstream's auto_migrate_view: rows of another shape, keyed otherwise (clients' caches match rows
            # by the key), or per caller instead of shared (or back)
            text = f"Replaced view {name} (its rows changed: its subscribers are disconnected)"
            plan.steps.append(MigrationStep(REPLACE_VIEW, None, name, text))
        elif (before.row_type, before.shape, before.public) != (after.row_type, after.shape, after.public):
            plan.steps.append(MigrationStep(CHANGE_VIEW, None, name, f"Changed view {name}"))


def _plan_reducers(plan: MigrationPlan) -> None:
    """Functions, and HTTP routes (code too: adding, removing or re-pointing one writes nothing)."""
    old_routes = {route.describe(): route for route in plan.old.http_routes}
    new_routes = {route.describe(): route for route in plan.new.http_routes}
    for kind, old, new, remove, add in (
        ("reducer", plan.old.reducers, plan.new.reducers, REMOVE_REDUCER, ADD_REDUCER),
        ("procedure", plan.old.procedures, plan.new.procedures, REMOVE_PROCEDURE, ADD_PROCEDURE),
        (
            "HTTP handler",
            plan.old.http_handlers,
            plan.new.http_handlers,
            REMOVE_HTTP_HANDLER,
            ADD_HTTP_HANDLER,
        ),
        ("HTTP route", old_routes, new_routes, REMOVE_HTTP_ROUTE, ADD_HTTP_ROUTE),
    ):
        for name in sorted(old.keys() - new.keys()):
            plan.steps.append(MigrationStep(remove, None, name, f"Removed {kind} {name}"))
        for name in sorted(new.keys() - old.keys()):
            plan.steps.append(MigrationStep(add, None, name, f"Created {kind} {name}"))


def _plan_row_level_security(plan: MigrationPlan) -> None:
    old = {r.sql: r for r in plan.old.row_level_security}
    new = {r.sql: r for r in plan.new.row_level_security}
    for sql in sorted(old.keys() - new.keys()):
        plan.steps.append(
            MigrationStep(
                REMOVE_ROW_LEVEL_SECURITY, old[sql].table, sql, f"Removed row level security policy: `{sql}`"
            )
        )
    for sql in sorted(new.keys() - old.keys()):
        plan.steps.append(
            MigrationStep(
                ADD_ROW_LEVEL_SECURITY, new[sql].table, sql, f"Created row level security policy: `{sql}`"
            )
        )


# ---- applying -------------------------------------------------------------------------------------------------------


def apply_migration(tx: MutTx, plan: MigrationPlan) -> None:
    """Apply an automatic plan inside ``tx``; raises ``MigrationError`` (roll ``tx`` back) if the plan is not
    automatic or a step fails (e.g. removing a table that has rows)."""
    if not plan.is_automatic:
        raise MigrationError("the update needs a manual migration:\n  " + "\n  ".join(plan.incompatible))
    rebuilt = {s.table for s in plan.steps if s.kind in (ADD_COLUMNS, RESCHEMA_EVENT_TABLE)}
    for step in plan.steps:
        if step.kind == CHANGE_PRIMARY_KEY and step.table is not None and step.table not in rebuilt:
            # the old key's index may be dropped below, and the new key's is created below: no key meanwhile
            tx.set_primary_key(_table_id(tx, step.table), None)
    for step in plan.steps:
        if step.table in rebuilt and step.kind not in (ADD_COLUMNS, RESCHEMA_EVENT_TABLE):
            continue  # rebuilding the table from the new definition already did it
        try:
            _apply_step(tx, plan, step)
        except MigrationError:
            raise
        except ds.DatastoreError as exc:
            raise MigrationError(f"{step.text}: {exc}") from exc
    sync_row_level_security(tx, plan.new)
    sync_views(tx, plan.new, frozenset(s.subject for s in plan.steps if s.kind == REPLACE_VIEW and s.subject))


def _table_id(tx: MutTx, name: str) -> int:
    table_id = tx.table_id(name)
    if table_id is None:
        raise MigrationError(f"table `{name}` does not exist in the database")
    return table_id


def _index_id(tx: MutTx, table_id: int, index_name: str) -> int:
    schema = tx.schema(table_id).index_named(index_name)
    if schema is None:
        raise MigrationError(f"index `{index_name}` does not exist in the database")
    return schema.index_id


def _apply_step(tx: MutTx, plan: MigrationPlan, step: MigrationStep) -> None:
    kind = step.kind
    if kind in _CODE_ONLY or kind == DISCONNECT_ALL_CLIENTS:
        return  # nothing stored; the host acts on DISCONNECT_ALL_CLIENTS after commit
    if kind in (ADD_ROW_LEVEL_SECURITY, REMOVE_ROW_LEVEL_SECURITY):
        return  # applied together by sync_row_level_security, once tables have their final ids
    assert step.table is not None
    if kind == ADD_TABLE:
        tx.create_table(plan.new.table(step.table).to_datastore_def())
        return
    table_id = _table_id(tx, step.table)
    if kind == REMOVE_TABLE:
        rows = tx.count(table_id)
        if rows:
            raise MigrationError(f"cannot remove table {step.table}: it still has {rows} row(s)")
        tx.drop_table(table_id)
    elif kind in (ADD_COLUMNS, RESCHEMA_EVENT_TABLE):
        rebuild_table(tx, plan.old.table(step.table), plan.new.table(step.table))
    elif kind == REMOVE_INDEX:
        assert step.subject is not None
        tx.drop_index(table_id, _index_id(tx, table_id, step.subject))
    elif kind == ADD_INDEX:
        assert step.subject is not None
        index = plan.new.table(step.table).index(step.subject)
        tx.create_index(table_id, ds.IndexDef(index.columns, index.name, index.algorithm))
    elif kind == REMOVE_SCHEDULE:
        tx.set_schedule(table_id, None)
    elif kind == ADD_SCHEDULE:
        schedule = plan.new.table(step.table).schedule
        assert schedule is not None
        tx.set_schedule(table_id, schedule.reducer_name, schedule.at_column)
    elif kind in (ADD_CONSTRAINT, REMOVE_CONSTRAINT):
        _apply_constraint_step(tx, plan, step, table_id)
    elif kind in (ADD_SEQUENCE, REMOVE_SEQUENCE):
        _apply_sequence_step(tx, plan, step, table_id)
    elif kind == CHANGE_PRIMARY_KEY:
        tx.set_primary_key(table_id, plan.new.table(step.table).primary_key)
    elif kind == CHANGE_COLUMN_TYPES:
        table = plan.new.table(step.table)
        for column_name in (step.subject or "").split(", "):
            column = table.column(column_name)
            tx.set_column_type(table_id, column.pos, column.type)
    elif kind == CHANGE_ACCESS:
        tx.set_table_access(table_id, plan.new.table(step.table).public)
    else:
        raise MigrationError(f"unknown migration step {kind!r}")


def _column_positions(table: TableDef, names: str | None) -> tuple[int, ...]:
    return tuple(table.column(n).pos for n in (names or "").split(", "))


def _apply_constraint_step(tx: MutTx, plan: MigrationPlan, step: MigrationStep, table_id: int) -> None:
    assert step.table is not None
    if step.kind == REMOVE_CONSTRAINT:
        tx.drop_unique_constraint(table_id, _column_positions(plan.old.table(step.table), step.subject))
        return
    try:
        tx.add_unique_constraint(table_id, _column_positions(plan.new.table(step.table), step.subject))
    except ds.UniqueConstraintViolation as exc:
        raise MigrationError(f"{step.text}: the table already has rows that repeat a key ({exc})") from exc


def _apply_sequence_step(tx: MutTx, plan: MigrationPlan, step: MigrationStep, table_id: int) -> None:
    assert step.table is not None and step.subject is not None
    if step.kind == REMOVE_SEQUENCE:
        tx.drop_sequence(table_id, plan.old.table(step.table).column(step.subject).pos)
        return
    table = plan.new.table(step.table)
    column = table.column(step.subject)
    sequence = next(s for s in table.sequences if s.column == column.pos)
    low = sequence.min_value if sequence.min_value is not None else 1
    high = sequence.max_value if sequence.max_value is not None else (1 << 127) - 1
    if any(low <= row[column.pos] <= high for row in tx.scan(table_id)):
        # SpacetimeDB's precheck (CheckAddSequenceRangeValid): the sequence could hand out a value already there
        raise MigrationError(f"Precheck failed: added sequence {sequence.name} already has values in range")
    tx.create_sequence(
        table_id,
        ds.SequenceDef(
            column.pos,
            sequence.name,
            increment=sequence.increment,
            start=sequence.start,
            min_value=sequence.min_value,
            max_value=sequence.max_value,
        ),
    )


def rebuild_table(tx: MutTx, old: TableDef, new: TableDef) -> None:
    """Re-create table ``old.name`` with ``new``'s layout, copying its rows with defaults for added columns."""
    table_id = _table_id(tx, old.name)
    rows = list(tx.scan(table_id))
    # continue each sequence from its next value, so that ids are never handed out twice
    starts = {column: sequence.value for column, sequence in tx.table(table_id).sequences}
    defaults = tuple(column.default for column in new.columns[len(old.columns) :])
    tx.drop_table(table_id)
    schema = tx.create_table(new.to_datastore_def(sequence_starts=starts))
    for row in rows:
        tx.insert(schema.table_id, row + defaults)


def sync_row_level_security(tx: MutTx, module: ModuleDef) -> None:
    """Make ``st_row_level_security`` hold exactly the module's rules, for the tables' current ids."""
    wanted = {rule.sql: _table_id(tx, rule.table) for rule in module.row_level_security}
    for row in list(tx.scan(ds.ST_ROW_LEVEL_SECURITY_ID)):
        table_id, sql = row
        if wanted.get(sql) == table_id:
            del wanted[sql]
        else:
            tx.delete(ds.ST_ROW_LEVEL_SECURITY_ID, row)
    for sql, table_id in sorted(wanted.items()):
        tx.insert(ds.ST_ROW_LEVEL_SECURITY_ID, (table_id, sql))


def sync_views(tx: MutTx, module: ModuleDef, replaced: frozenset[str] = frozenset()) -> None:
    """Make ``st_view`` and ``st_view_column`` describe exactly the module's views. A view keeps its ``view_id``
    and ``table_id`` while only its body or access changes (upstream's UpdateView); a new view, or one whose
    rows, key or caller changed (``replaced``; upstream's AddView + RemoveView), gets new ones: the table id
    from ``st_table``'s id sequence, so no table ever takes it (upstream's backing table; our views store
    nothing, see docs/views.md)."""
    kept: dict[str, tuple[Any, ...]] = {}
    for row in list(tx.scan(ds.ST_VIEW_ID)):
        view = module.views.get(row[1])
        if (
            view is not None
            and view.name not in replaced
            and row[4] == view.anonymous
            and _view_columns(tx, row[0]) == _columns_of(view)
        ):
            kept[view.name] = row
            continue
        for column in [c for c in tx.scan(ds.ST_VIEW_COLUMN_ID) if c[0] == row[0]]:
            tx.delete(ds.ST_VIEW_COLUMN_ID, column)
        tx.delete(ds.ST_VIEW_ID, row)
    for view in sorted(module.views.values(), key=lambda v: v.index):
        kept_row = kept.get(view.name)
        if kept_row is not None:
            if kept_row[3] != view.public:
                tx.delete(ds.ST_VIEW_ID, kept_row)
                tx.insert(ds.ST_VIEW_ID, (*kept_row[:3], view.public, kept_row[4]))
            continue
        view_id = tx.next_sequence_value(ds.ST_VIEW_ID, 0)
        table_id = tx.next_sequence_value(ds.ST_TABLE_ID, 0)
        tx.insert(ds.ST_VIEW_ID, (view_id, view.name, table_id, view.public, view.anonymous))
        for pos, (name, ty) in enumerate(_columns_of(view)):
            tx.insert(ds.ST_VIEW_COLUMN_ID, (view_id, pos, name, type_to_bsatn(ty)))


def _columns_of(view: ViewDef) -> list[tuple[str, AlgebraicType]]:
    return [
        (element.name or f"col_{pos}", element.type) for pos, element in enumerate(view.row_type.elements)
    ]


def _view_columns(tx: MutTx, view_id: int) -> list[tuple[str, AlgebraicType]]:
    rows = sorted(row for row in tx.scan(ds.ST_VIEW_COLUMN_ID) if row[0] == view_id)
    return [(row[2], type_from_bsatn(row[3])) for row in rows]


def create_module_tables(tx: MutTx, module: ModuleDef) -> dict[str, int]:
    """First publish: create every table of ``module`` (sorted by name) and its row-level security rules in
    ``tx``; returns the new table ids by name."""
    ids = {}
    for name in sorted(module.tables):
        if tx.table_id(name) is not None:
            raise MigrationError(
                f"cannot create table `{name}`: the database already has a table of that name"
            )
        ids[name] = tx.create_table(module.tables[name].to_datastore_def()).table_id
    sync_row_level_security(tx, module)
    sync_views(tx, module)
    return ids


# ---- rendering -----------------------------------------------------------------------------------------------------

_RULE = "━" * 60


class _PlanFormatter:
    """The human-readable plan, in the layout of SpacetimeDB's ``spacetime publish`` output."""

    def __init__(self, plan: MigrationPlan, color: bool) -> None:
        self.plan = plan
        self.color = color
        self.lines: list[str] = []

    def style(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text

    def render(self) -> str:
        self.lines += [_RULE, self.style("Database Migration Plan", "1"), _RULE, ""]
        if not self.plan.is_automatic:
            self.lines.append(self.style("✗ This update cannot be applied automatically:", "1;31"))
            self.lines += [f"    • {problem}" for problem in self.plan.incompatible]
            return "\n".join(self.lines) + "\n"
        if not self.plan.steps:
            self.lines.append("No changes.")
        for step in self.plan.steps:
            self.render_step(step)
        return "\n".join(self.lines) + "\n"

    def render_step(self, step: MigrationStep) -> None:
        if step.kind == DISCONNECT_ALL_CLIENTS:
            self.lines.append(
                self.style(
                    "!!! Warning: All clients will be disconnected due to breaking schema changes", "1;33"
                )
            )
            return
        removed = step.kind.startswith("remove_")
        self.lines.append(f"{self.style('▸', '31' if removed else '32')} {step.text}")
        if step.kind == ADD_TABLE and step.table is not None:
            self.render_table(self.plan.new.table(step.table))
        elif step.kind == ADD_COLUMNS and step.table is not None:
            table = self.plan.new.table(step.table)
            for name in (step.subject or "").split(", "):
                column = table.column(name)
                self.lines.append(f"    + {name}: {format_type(column.type)} (default: {column.default!r})")

    def render_table(self, table: TableDef) -> None:
        self.lines.append("    Columns:")
        self.lines += [f"        • {c.name}: {format_type(c.type)}" for c in table.columns]
        sections: list[tuple[str, list[Any]]] = [
            ("Unique constraints", [f"{c.name} on {_cols(table, c.columns)}" for c in table.constraints]),
            ("Indexes", [f"{i.name} on {_cols(table, i.columns)}" for i in table.indexes]),
            (
                "Auto-increment constraints",
                [f"{s.name} on {table.columns[s.column].name}" for s in table.sequences],
            ),
        ]
        if table.schedule is not None:
            sections.append(
                ("Schedule", [f"{table.schedule.name} calling reducer {table.schedule.reducer_name}"])
            )
        for title, items in sections:
            if items:
                self.lines.append(f"    {title}:")
                self.lines += [f"        • {item}" for item in items]
