"""SQL: the query language of ``spacetime sql``, the HTTP ``/sql`` route, one-off queries and subscriptions.

Owns: the tokenizer and hand-written parser (``parse``, ``parse_script``), the typed planner (``compile``:
name resolution against the caller's visible tables, literal type checking, row-level security, index
selection), the executor (``execute``: SELECT over any transaction, INSERT / UPDATE / DELETE / SET over a
``MutTx``), the ``/sql`` JSON runner (``run_sql``) and psql-style rendering (``render_table``,
``render_sql_json``).
May import: ``spacetimedb.sats``, ``spacetimedb.datastore`` (and ``spacetimedb.db``). Never the server, host or
module layers.

Dialect (SpacetimeDB's, plus ORDER BY / OFFSET for one-off queries)::

    SELECT * | t.* | col [AS n], ... | COUNT(*) [AS n]
      FROM t [AS a] { [INNER] JOIN u [AS b] [ON pred] } [WHERE pred]
      [ORDER BY col [ASC|DESC], ...] [LIMIT n] [OFFSET n]
    SELECT * FROM t WHERE ... UNION [ALL] SELECT t.* FROM t ...   (whole rows of one table; UNION only
                                                                    between single-table selects)
    INSERT INTO t [(col, ...)] VALUES (lit, ...), ...
    UPDATE t SET col = lit, ... [WHERE pred]
    DELETE FROM t [WHERE pred]
    SET row_limit = n        SHOW row_limit

Predicates: ``= <> != < <= > >=`` between a column and a literal / ``:sender`` / another column, ``AND``,
``OR``, ``NOT``, parentheses. Literals: integers (``-1``, ``1e3``), floats, ``'strings'``, ``TRUE``/``FALSE``,
hex (``0x..``, ``X'..'``) for bytes / identities / connection ids, RFC 3339 strings for timestamps, uuid
strings, variant names for plain enums, ``NULL`` for an option's none. Names are case-sensitive and may be
double-quoted (``SELECT * FROM "t"``). Queries are at most 50,000 bytes; expressions nest at most 64 deep.

Typical use::

    plan = compile("SELECT * FROM person WHERE id = 7", tx, caller=identity, is_owner=False)
    result = execute(plan, tx)            # StatementResult(schema: ProductType, rows: list[tuple], stats)
    plan.explain()                        # ['IndexSeek person using person_id_idx_btree key=7']
    run_sql(datastore, "SELECT * FROM t; SHOW row_limit", identity, is_owner=True)  # the /sql JSON

Visibility: non-owners see public tables only (others are "no such table"); for them every table with rules
in ``st_row_level_security`` is replaced by the union of its rules (``:sender`` = the caller); the owner
bypasses RLS. DML and SET need the owner; system tables are read-only. A non-owner's SELECT is rejected when
its estimated cardinality exceeds ``st_var.row_limit``. Every error is a ``SqlError``.

Thread safety: parsing and compiling are pure (a small parse cache is lock-protected); plans are immutable
once built and may be shared; executing reads through the transaction it is given.
"""

from .ast import Statement
from .compile import (
    Accessors,
    SchemaView,
    compile,
    compile_statement,
    compile_subscription,
    expand_rls,
    rls_rules,
)
from .errors import (
    SqlError,
    SqlExecutionError,
    SqlLimitError,
    SqlNameError,
    SqlPermissionError,
    SqlSyntaxError,
    SqlTimeoutError,
    SqlTypeError,
    SqlUnsupportedError,
)
from .execute import (
    NO_LIMITS,
    QueryLimits,
    StatementResult,
    Stats,
    check_estimate,
    estimate_rows,
    execute,
    fragment_rows,
    result_too_large,
    row_limit,
    row_limit_exceeded,
    select_rows,
)
from .format import format_value, render_sql_json, render_statement, render_table
from .lexer import MAX_QUERY_BYTES
from .parser import MAX_DEPTH, parse, parse_script
from .plan import (
    ColumnsOutput,
    CountOutput,
    DeletePlan,
    Fragment,
    InsertPlan,
    Plan,
    Relation,
    SelectPlan,
    SetVarPlan,
    StarOutput,
    UpdatePlan,
)
from .run import SqlBackend, is_read_only, result_json, run_sql, run_statement

__all__ = [
    "MAX_DEPTH",
    "MAX_QUERY_BYTES",
    "ColumnsOutput",
    "CountOutput",
    "DeletePlan",
    "Fragment",
    "InsertPlan",
    "Plan",
    "Relation",
    "SchemaView",
    "SelectPlan",
    "SetVarPlan",
    "SqlBackend",
    "SqlError",
    "SqlExecutionError",
    "SqlLimitError",
    "SqlNameError",
    "SqlPermissionError",
    "SqlSyntaxError",
    "SqlTimeoutError",
    "SqlTypeError",
    "SqlUnsupportedError",
    "StarOutput",
    "Statement",
    "StatementResult",
    "Stats",
    "UpdatePlan",
    "check_estimate",
    "NO_LIMITS",
    "QueryLimits",
    "compile",
    "compile_statement",
    "compile_subscription",
    "Accessors",
    "estimate_rows",
    "execute",
    "expand_rls",
    "format_value",
    "fragment_rows",
    "is_read_only",
    "parse",
    "parse_script",
    "render_sql_json",
    "render_statement",
    "render_table",
    "result_json",
    "rls_rules",
    "result_too_large",
    "row_limit",
    "row_limit_exceeded",
    "run_sql",
    "run_statement",
    "select_rows",
]
