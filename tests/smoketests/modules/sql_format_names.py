"""The part of upstream's smoketest module ``sql-format`` about names: a table and a view whose canonical names
differ from their accessors, and a column whose canonical name (``accessor_value_1``) differs from its accessor
(``accessor_value1``): ``@table(accessor=...)``, ``@view(name=...)`` and ``Column(name=...)``.
"""

from typing import Annotated

from spacetimedb import Column, PrimaryKey, ReducerContext, ViewContext, reducer, table, u32, view


@table(accessor="accessor_table", name="canonical_table", public=True)
class AccessorRow:
    id: Annotated[u32, PrimaryKey]
    accessor_value1: Annotated[u32, Column(name="accessor_value_1")]


@reducer(lifecycle="init")
def init(ctx: ReducerContext) -> None:
    ctx.db.accessor_table.insert(AccessorRow(id=1, accessor_value1=7))


@view(name="canonical_filtered", public=True)
def accessor_filtered(ctx: ViewContext) -> list[AccessorRow]:
    return [row for row in ctx.db.accessor_table.iter() if row.accessor_value1 == 7]
