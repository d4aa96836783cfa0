"""A hand-written recursive-descent parser for the dialect (grammar below).

```
script     = statement { ';' statement } [ ';' ]
statement  = query | insert | update | delete | set | show
query      = select { UNION [ALL] select }
select     = SELECT projection FROM table { [INNER] JOIN table [ON pred] }
             [WHERE pred] [ORDER BY column [ASC|DESC] {, ...}] [LIMIT n] [OFFSET n]
projection = '*' | name '.' '*' | COUNT '(' '*' ')' [[AS] name] | column [[AS] name] {, column [[AS] name]}
table      = name [[AS] name]
insert     = INSERT INTO name ['(' name {, name} ')'] VALUES '(' literal {, literal} ')' {, '(' ... ')'}
update     = UPDATE name SET name '=' literal {, name '=' literal} [WHERE pred]
delete     = DELETE FROM name [WHERE pred]
set        = SET name ('=' | TO) literal
show       = SHOW name
pred       = conj { OR conj }          conj = neg { AND neg }        neg = NOT neg | atom
atom       = '(' pred ')' | operand [op operand]          op = '=' | '<>' | '!=' | '<' | '<=' | '>' | '>='
operand    = literal | :param | name ['.' name]
literal    = ['-'|'+'] number | 'string' | 0xHEX | X'HEX' | TRUE | FALSE | NULL
```

Names are case-sensitive (quoted or not); keywords are not. Chains of AND/OR are parsed iteratively, so
only parentheses and NOT nest; their depth is bounded by ``MAX_DEPTH``.
"""

from __future__ import annotations

from collections import OrderedDict
from threading import Lock

from . import ast
from .errors import SqlError, SqlLimitError, SqlSyntaxError, SqlUnsupportedError
from .lexer import Token, check_length, tokenize

MAX_DEPTH = 64

_COMPARISONS = {"=": "=", "<>": "<>", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_UNSUPPORTED_CLAUSES = {
    "GROUP": "GROUP BY",
    "HAVING": "HAVING",
    "INTERSECT": "set operations (INTERSECT)",
    "EXCEPT": "set operations (EXCEPT)",
}


class _Parser:
    __slots__ = ("depth", "pos", "text", "tokens", "words")

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        # the upper-cased spelling of every unquoted name, so keyword tests are one lookup
        self.words = [value.upper() if kind == "ident" else "" for kind, value, _ in self.tokens]
        self.pos = 0
        self.depth = 0

    # -- token helpers ------------------------------------------------------------------------------------

    def peek(self, offset: int = 0) -> Token:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else self.tokens[-1]

    def advance(self) -> Token:
        token = self.tokens[self.pos]
        if token[0] != "eof":
            self.pos += 1
        return token

    def at_keyword(self, *words: str) -> bool:
        return self.words[self.pos] in words

    def at_op(self, *ops: str) -> bool:
        kind, value, _ = self.tokens[self.pos]
        return kind == "op" and value in ops

    def accept_keyword(self, word: str) -> bool:
        if self.words[self.pos] == word:
            self.pos += 1
            return True
        return False

    def accept_op(self, op: str) -> bool:
        if self.at_op(op):
            self.pos += 1
            return True
        return False

    def expect_keyword(self, word: str) -> None:
        if not self.accept_keyword(word):
            raise self.error(f"Expected {word}")

    def expect_op(self, op: str) -> None:
        if not self.accept_op(op):
            raise self.error(f"Expected `{op}`")

    def error(self, what: str) -> SqlSyntaxError:
        kind, value, pos = self.tokens[self.pos]
        found = "end of input" if kind == "eof" else f"`{_shown(kind, value)}`"
        return SqlSyntaxError(f"{what}, found {found} at position {pos}")

    def name(self, what: str = "a name") -> str:
        kind, value, _ = self.tokens[self.pos]
        if kind == "qident" or (kind == "ident" and self.words[self.pos] not in ast.KEYWORDS):
            self.pos += 1
            return value
        raise self.error(f"Expected {what}")

    def at_name(self) -> bool:
        kind = self.tokens[self.pos][0]
        return kind == "qident" or (kind == "ident" and self.words[self.pos] not in ast.KEYWORDS)

    # -- statements ---------------------------------------------------------------------------------------

    def script(self) -> list[ast.Statement]:
        statements: list[ast.Statement] = []
        while True:
            while self.accept_op(";"):
                pass
            if self.peek()[0] == "eof":
                return statements
            statements.append(self.statement())
            if self.peek()[0] != "eof" and not self.at_op(";"):
                raise self.unexpected_tail()

    def unexpected_tail(self) -> SqlError:
        if self.at_keyword(*_UNSUPPORTED_CLAUSES):
            word = self.peek()[1].upper()
            return SqlUnsupportedError(f"Unsupported: {_UNSUPPORTED_CLAUSES[word]}")
        if self.at_op(","):
            return SqlUnsupportedError("Implicit joins are not supported")
        return self.error("Expected end of statement")

    def statement(self) -> ast.Statement:
        word = self.words[self.pos]
        if word == "SELECT":
            return self.query()
        if word == "INSERT":
            return self.insert()
        if word == "UPDATE":
            return self.update()
        if word == "DELETE":
            return self.delete()
        if word == "SET":
            return self.set_var()
        if word == "SHOW":
            return self.show_var()
        if word in ("WITH", "CREATE", "DROP", "ALTER", "TRUNCATE", "BEGIN", "COMMIT", "ROLLBACK", "EXPLAIN"):
            raise SqlUnsupportedError(f"Unsupported statement: {word}")
        raise self.error("Expected SELECT, INSERT, UPDATE, DELETE, SET or SHOW")

    def query(self) -> ast.Select | ast.Union:
        first = self.select()
        if not self.at_keyword("UNION"):
            return first
        selects = [first]
        distinct: bool | None = None
        while self.accept_keyword("UNION"):
            union_all = self.accept_keyword("ALL")
            if distinct is not None and distinct == union_all:
                raise SqlUnsupportedError("Unsupported: mixing UNION and UNION ALL")
            distinct = not union_all
            if not self.at_keyword("SELECT"):
                raise self.error("Expected SELECT after UNION")
            selects.append(self.select())
        return ast.Union(tuple(selects), distinct=bool(distinct))

    def select(self) -> ast.Select:
        self.expect_keyword("SELECT")
        if self.at_keyword("DISTINCT", "ALL"):
            raise SqlUnsupportedError(f"Unsupported: SELECT {self.peek()[1].upper()}")
        projection = self.projection()
        if not self.accept_keyword("FROM"):
            if self.peek()[0] == "eof":
                raise SqlSyntaxError("A FROM clause is required")
            raise self.error("Expected FROM")
        table = self.table_ref()
        joins = self.joins()
        where = self.predicate() if self.accept_keyword("WHERE") else None
        if not self.words[self.pos]:  # end of statement: no ORDER BY / LIMIT / OFFSET to look for
            return ast.Select(projection, table, joins, where)
        order_by = self.order_by()
        limit = offset = None
        for _ in range(2):
            if limit is None and self.accept_keyword("LIMIT"):
                limit = self.count_literal("LIMIT")
            elif offset is None and self.accept_keyword("OFFSET"):
                offset = self.count_literal("OFFSET")
        return ast.Select(projection, table, joins, where, order_by, limit, offset)

    def projection(self) -> ast.Projection:
        if self.accept_op("*"):
            return ast.Star()
        if self.at_keyword("COUNT") and self.peek(1)[:2] == ("op", "("):
            return self.count()
        if self.at_name() and self.peek(1)[:2] == ("op", ".") and self.peek(2)[:2] == ("op", "*"):
            table = self.name()
            self.pos += 2
            if self.at_op(","):
                raise SqlUnsupportedError("Mixed wildcard projections are not supported")
            return ast.Star(table)
        items = [self.project_column()]
        while self.accept_op(","):
            if self.at_op("*") or (self.peek(1)[:2] == ("op", ".") and self.peek(2)[:2] == ("op", "*")):
                raise SqlUnsupportedError("Mixed wildcard projections are not supported")
            items.append(self.project_column())
        return ast.Columns(tuple(items))

    def count(self) -> ast.Count:
        self.pos += 2  # COUNT (
        if self.at_keyword("DISTINCT"):
            raise SqlUnsupportedError("Unsupported aggregate: COUNT(DISTINCT ...)")
        if not self.accept_op("*"):
            raise SqlUnsupportedError("Unsupported aggregate: only COUNT(*) is supported")
        self.expect_op(")")
        alias = self.name("an alias") if self.accept_keyword("AS") else self.optional_alias()
        if self.at_op(","):
            raise SqlUnsupportedError("Unsupported projection: COUNT(*) must be the only projection")
        return ast.Count(alias)

    def project_column(self) -> ast.ProjectColumn:
        if self.at_keyword("COUNT", "SUM", "MIN", "MAX", "AVG") and self.peek(1)[:2] == ("op", "("):
            raise SqlUnsupportedError(
                f"Unsupported aggregate: {self.peek()[1].upper()}(...) (only a lone COUNT(*) is supported)"
            )
        if self.peek()[0] == "ident" and self.words[self.pos] == "CASE":
            # upstream parses CASE and then refuses it; without this it would read as a column named `CASE`
            raise SqlUnsupportedError("Unsupported expression: CASE")
        column = self.column("a column")
        if self.at_op("("):
            raise SqlUnsupportedError(f"Unsupported: function calls such as `{column.to_sql()}(...)`")
        alias = self.name("an alias") if self.accept_keyword("AS") else self.optional_alias()
        return ast.ProjectColumn(column, alias)

    def optional_alias(self) -> str | None:
        return self.name() if self.at_name() else None

    def table_ref(self) -> ast.TableRef:
        if self.at_op("("):
            raise SqlUnsupportedError("Unsupported: subqueries in FROM")
        name = self.name("a table name")
        alias = self.name("an alias") if self.accept_keyword("AS") else self.optional_alias()
        return ast.TableRef(name, alias)

    def joins(self) -> tuple[ast.Join, ...]:
        joins: list[ast.Join] = []
        while True:
            if not self.words[self.pos] and not self.at_op(","):
                return tuple(joins)
            if self.at_keyword("LEFT", "RIGHT", "FULL", "OUTER", "CROSS", "NATURAL"):
                raise SqlUnsupportedError("Non-inner joins are not supported")
            if self.at_op(","):
                raise SqlUnsupportedError("Implicit joins are not supported")
            if self.accept_keyword("INNER"):
                self.expect_keyword("JOIN")
            elif not self.accept_keyword("JOIN"):
                return tuple(joins)
            table = self.table_ref()
            if self.at_keyword("USING"):
                raise SqlUnsupportedError("Unsupported: JOIN ... USING (use ON)")
            on = self.predicate() if self.accept_keyword("ON") else None
            joins.append(ast.Join(table, on))

    def order_by(self) -> tuple[ast.OrderItem, ...]:
        if not self.accept_keyword("ORDER"):
            return ()
        self.expect_keyword("BY")
        items = []
        while True:
            column = self.column("a column")
            descending = False
            if self.accept_keyword("DESC"):
                descending = True
            else:
                self.accept_keyword("ASC")
            items.append(ast.OrderItem(column, descending))
            if not self.accept_op(","):
                return tuple(items)

    def count_literal(self, clause: str) -> ast.Literal:
        kind, value, _ = self.peek()
        if kind == "placeholder":
            self.pos += 1
            return ast.Literal("param", str(int(value)))
        if kind != "number":
            raise self.error(f"Expected a number after {clause}")
        self.pos += 1
        return ast.Literal("number", value)

    def insert(self) -> ast.Insert:
        self.expect_keyword("INSERT")
        self.expect_keyword("INTO")
        table = self.name("a table name")
        columns = None
        if self.accept_op("("):
            names = [self.name("a column name")]
            while self.accept_op(","):
                names.append(self.name("a column name"))
            self.expect_op(")")
            columns = tuple(names)
        if self.at_keyword("SELECT"):
            raise SqlUnsupportedError("Unsupported: INSERT ... SELECT")
        self.expect_keyword("VALUES")
        rows = [self.value_row()]
        while self.accept_op(","):
            rows.append(self.value_row())
        return ast.Insert(table, columns, tuple(rows))

    def value_row(self) -> tuple[ast.Literal, ...]:
        self.expect_op("(")
        values = [self.literal_value("a literal value")]
        while self.accept_op(","):
            values.append(self.literal_value("a literal value"))
        self.expect_op(")")
        return tuple(values)

    def update(self) -> ast.Update:
        self.expect_keyword("UPDATE")
        table = self.name("a table name")
        if self.at_name():
            raise SqlUnsupportedError("Unsupported: aliases in UPDATE")
        self.expect_keyword("SET")
        assignments = [self.assignment()]
        while self.accept_op(","):
            assignments.append(self.assignment())
        if self.at_keyword("FROM"):
            raise SqlUnsupportedError("Unsupported: UPDATE ... FROM")
        where = self.predicate() if self.accept_keyword("WHERE") else None
        return ast.Update(table, tuple(assignments), where)

    def assignment(self) -> ast.Assignment:
        column = self.name("a column name")
        if self.at_op("."):
            raise SqlUnsupportedError("Unsupported: qualified column names in SET")
        self.expect_op("=")
        return ast.Assignment(column, self.literal_value("a literal value (only literals can be assigned)"))

    def delete(self) -> ast.Delete:
        self.expect_keyword("DELETE")
        self.expect_keyword("FROM")
        table = self.name("a table name")
        if self.at_op(","):
            raise SqlUnsupportedError("Multi-table DELETE is not supported")
        if self.at_name() or self.at_keyword("AS"):
            raise SqlUnsupportedError("Unsupported: aliases in DELETE")
        where = self.predicate() if self.accept_keyword("WHERE") else None
        return ast.Delete(table, where)

    def set_var(self) -> ast.SetVar:
        self.expect_keyword("SET")
        name = self.name("a variable name")
        if not (self.accept_op("=") or self.accept_keyword("TO")):
            raise self.error("Expected `=` or TO")
        return ast.SetVar(name, self.literal_value("a literal value"))

    def show_var(self) -> ast.ShowVar:
        self.expect_keyword("SHOW")
        return ast.ShowVar(self.name("a variable name"))

    # -- expressions --------------------------------------------------------------------------------------

    def predicate(self) -> ast.Expr:
        items = [self.conjunction()]
        while self.accept_keyword("OR"):
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else ast.Or(tuple(items))

    def conjunction(self) -> ast.Expr:
        items = [self.negation()]
        while self.accept_keyword("AND"):
            items.append(self.negation())
        return items[0] if len(items) == 1 else ast.And(tuple(items))

    def negation(self) -> ast.Expr:
        nots = 0
        while self.accept_keyword("NOT"):
            nots += 1
            self.enter()
        expr = self.atom()
        for _ in range(nots):
            expr = ast.Not(expr)
            self.depth -= 1
        return expr

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise SqlLimitError(f"Recursion limit exceeded: expressions may nest at most {MAX_DEPTH} deep")

    def atom(self) -> ast.Expr:
        if self.accept_op("("):
            self.enter()
            expr = self.predicate()
            self.expect_op(")")
            self.depth -= 1
            return expr
        left = self.operand()
        kind, value, _ = self.peek()
        if kind == "op" and value in _COMPARISONS:
            self.pos += 1
            return ast.Compare(_COMPARISONS[value], left, self.operand())
        if self.at_keyword("IS", "IN", "LIKE", "BETWEEN", "ILIKE"):
            raise SqlUnsupportedError(f"Unsupported operator: {self.peek()[1].upper()}")
        if kind == "op" and value in "+-*":
            raise SqlUnsupportedError(f"Unsupported: arithmetic (`{value}`) in expressions")
        return left

    def operand(self) -> ast.Operand:
        kind, value, _ = self.peek()
        if kind == "param":
            self.pos += 1
            return ast.Param(value)
        if kind == "qident" or (kind == "ident" and self.words[self.pos] not in ast.KEYWORDS):
            if self.peek(1)[:2] == ("op", "("):
                raise SqlUnsupportedError(f"Unsupported: function calls such as `{value}(...)`")
            return self.column("a column")
        return self.literal_value("a column, a literal or a parameter")

    def column(self, what: str) -> ast.Column:
        first = self.name(what)
        if self.accept_op("."):
            return ast.Column(first, self.name("a column name"))
        return ast.Column(None, first)

    def literal_value(self, what: str) -> ast.Literal:
        kind, value, _ = self.peek()
        if kind == "op" and value in "+-" and self.peek(1)[0] == "number":
            self.pos += 2
            number = self.tokens[self.pos - 1][1]
            return ast.Literal("number", number if value == "+" else "-" + number)
        if kind in ("number", "string", "hex"):
            self.pos += 1
            return ast.Literal(kind, value)
        if kind == "placeholder":
            self.pos += 1
            return ast.Literal("param", str(int(value)))
        if kind == "ident":
            word = self.words[self.pos]
            if word in ("TRUE", "FALSE"):
                self.pos += 1
                return ast.Literal("bool", word.lower())
            if word == "NULL":
                self.pos += 1
                return ast.Literal("null", "NULL")
        raise self.error(f"Expected {what}")


def _shown(kind: str, value: str) -> str:
    if kind == "string":
        return "'" + value + "'"
    if kind == "qident":
        return '"' + value + '"'
    if kind == "hex":
        return "0x" + value
    if kind == "param":
        return ":" + value
    return value


# ---- public entry points, with a small cache: parsing is pure, and one-off queries repeat ----------------

_CACHE_SIZE = 512
_cache: OrderedDict[str, list[ast.Statement]] = OrderedDict()
_cache_lock = Lock()


def parse_script(text: str) -> list[ast.Statement]:
    """Parse a ``;``-separated script (possibly empty) into statements."""
    with _cache_lock:
        cached = _cache.get(text)
        if cached is not None:
            _cache.move_to_end(text)
            return list(cached)
    check_length(text)
    statements = _Parser(text).script()
    if len(text) <= 4096:
        with _cache_lock:
            _cache[text] = statements
            if len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return list(statements)


def parse(text: str) -> ast.Statement:
    """Parse exactly one statement (a trailing ``;`` is allowed)."""
    statements = parse_script(text)
    if not statements:
        raise SqlUnsupportedError("Empty SQL query")
    if len(statements) > 1:
        raise SqlUnsupportedError("Multiple SQL statements are not supported")
    return statements[0]


def parse_uncached(text: str) -> list[ast.Statement]:
    """``parse_script`` without the cache (for measuring the parser itself)."""
    return _Parser(text).script()
