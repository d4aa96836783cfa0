"""Tokenizer: one compiled regular expression, scanned left to right.

Tokens are plain tuples ``(kind, value, position)``; ``kind`` is one of ``ident`` (unquoted name or keyword),
``qident`` (double-quoted name, unescaped), ``string`` (single-quoted, unescaped), ``hex`` (the digits of
``0x...`` or ``X'...'``), ``number``, ``param`` (``:name``), ``placeholder`` (``$1``), ``op`` (punctuation) and ``eof``.
"""

from __future__ import annotations

import re

from .errors import SqlLimitError, SqlSyntaxError

Token = tuple[str, str, int]

MAX_QUERY_BYTES = 50_000

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|--[^\n]*|/\*.*?\*/)
  | "(?P<qident>(?:[^"]|"")*)"
  | '(?P<string>(?:[^']|'')*)'
  | [xX]'(?P<xhex>[0-9a-fA-F]*)'
  | 0[xX](?P<hex>[0-9a-fA-F]+)(?![\w$])
  | (?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)(?![\w$])
  | :(?P<param>[^\W\d]\w*)
  | \$(?P<placeholder>\d{1,9})(?![\w$])
  | (?P<ident>[^\W\d]\w*)
  | (?P<op><>|!=|<=|>=|[=<>(),.*;+-])
  | (?P<bad>.)
    """,
    re.VERBOSE | re.DOTALL,
)


def check_length(text: str) -> None:
    """Reject texts above ``MAX_QUERY_BYTES`` (UTF-8) before doing any work on them."""
    # a char is at most 4 bytes, so short texts need no encoding to be measured
    if len(text) * 4 > MAX_QUERY_BYTES and len(text.encode("utf-8", "surrogatepass")) > MAX_QUERY_BYTES:
        raise SqlLimitError(f"SQL query exceeds the maximum allowed length of {MAX_QUERY_BYTES} bytes")


def tokenize(text: str) -> list[Token]:
    check_length(text)
    tokens: list[Token] = []
    append = tokens.append
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        if kind == "ws":
            continue
        pos = match.start()
        if kind == "bad":
            raise SqlSyntaxError(_unexpected_char(text, pos))
        value = match.group(kind)  # type: ignore[arg-type]  # lastgroup is never None: every alternative of _TOKEN is a named group
        if kind == "qident":
            if not value:
                raise SqlSyntaxError(f"Empty quoted identifier at position {pos}")
            value = value.replace('""', '"')
        elif kind == "string":
            value = value.replace("''", "'")
        elif kind == "xhex":
            kind = "hex"
        append((kind, value, pos))  # type: ignore[arg-type]  # kind is a group name (see above), so a str
    append(("eof", "", len(text)))
    return tokens


def _unexpected_char(text: str, pos: int) -> str:
    char = text[pos]
    if char in "\"'":
        return f"Unterminated quoted {'identifier' if char == chr(34) else 'string'} at position {pos}"
    if char == "/" and text.startswith("/*", pos):
        return f"Unterminated comment at position {pos}"
    return f"Unexpected character {char!r} at position {pos}"
