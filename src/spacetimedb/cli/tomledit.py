"""Small edits to a tomlkit document that keep a hand-edited file's comments where the reader expects them.

tomlkit stores the comment lines written *above* a table header as trailing items of the table before it.
Edited naively, a new key or a new ``[[array]]`` entry lands between those comments and the header they
describe, and removing an entry drags along the comments of the entry below it. These helpers move such
"trivia" (comment and blank-line items) so that it stays attached to the header that follows it.
"""

from __future__ import annotations

from typing import Any

import tomlkit
from tomlkit.items import AoT, Comment, Item, Table, Whitespace
from tomlkit.toml_document import TOMLDocument


def set_table_value(table: Table, key: str, value: Any) -> None:
    """``table[key] = value``, but a new key goes above the comments that introduce the next header."""
    if key in table:
        table[key] = value
        return
    trailing = detach_trailing_trivia(table)
    table[key] = value
    attach_trailing_trivia(table, trailing)


def remove_table_key(table: Table, key: str) -> None:
    if key in table:
        del table[key]


def append_table(aot: AoT, table: Table) -> None:
    """Append ``table`` to ``aot``, after the last entry but before the comments of whatever follows."""
    if len(aot) == 0:
        aot.append(table)
        return
    previous = aot[-1]
    trailing = detach_trailing_trivia(previous)
    aot.append(table)
    if "\n" not in table.trivia.indent:  # tomlkit separates entries itself only in arrays it created
        attach_trailing_trivia(previous, [Whitespace("\n")])
    attach_trailing_trivia(table, trailing)


def remove_table(document: TOMLDocument, key: str, index: int) -> None:
    """Remove entry ``index`` of the array of tables ``key``, together with the comments above its header.

    The comments above the *first* entry's header are kept: they may as well describe the whole file.
    """
    aot = document[key]
    if not isinstance(aot, AoT):
        raise TypeError(f"{key} is not an array of tables")
    removed = aot[index]
    carried = detach_trailing_trivia(removed)  # these introduce whatever comes after the removed entry
    if index > 0:
        previous = aot[index - 1]
        detach_trailing_trivia(previous)  # the removed entry's own comments
        attach_trailing_trivia(previous, carried)
        del aot[index]
        return
    if len(aot) > 1:
        prepend_to_header(aot[1], carried)
        del aot[index]
        return
    following = _item_after(document, aot)
    del document[key]
    if following is not None:
        prepend_to_header(following, carried)
    else:
        for item in carried:
            document.append(None, item)


def detach_trailing_trivia(table: Table) -> list[Item]:
    """Pop the comment and blank-line items at the end of ``table``'s body and return them in order."""
    body = table.value.body
    trailing: list[Item] = []
    # Only items after the last key are touched, so the container's key -> index map stays valid.
    while body and body[-1][0] is None and isinstance(body[-1][1], (Comment, Whitespace)):
        trailing.insert(0, body.pop()[1])
    return trailing


def attach_trailing_trivia(table: Table, items: list[Item]) -> None:
    for item in items:
        table.value.append(None, item)


def prepend_to_header(item: Item, trivia: list[Item]) -> None:
    """Render ``trivia`` just above ``item``'s header (a table, or the first table of an array of tables)."""
    text = "".join(piece.as_string() for piece in trivia)
    if not text:
        return
    if isinstance(item, AoT):
        if len(item) == 0:
            return
        item = item[0]
    if isinstance(item, Table):
        # The header's indent is printed verbatim before "[name]"; on the next parse these lines become
        # ordinary comment items again.
        item.trivia.indent = text + item.trivia.indent


def _item_after(document: TOMLDocument, target: Item) -> Item | None:
    body = document.body
    for position, (_, item) in enumerate(body):
        if item is target:
            following = [entry for key, entry in body[position + 1 :] if key is not None]
            return following[0] if following else None
    return None


def multiline_string(value: str) -> Item:
    """A PEM block and the like, written as a ''' literal so that it stays readable in the file."""
    readable = all(char == "\n" or char.isprintable() for char in value)
    if "\n" in value and "'''" not in value and readable:
        return tomlkit.string(value, literal=True, multiline=True)
    return tomlkit.string(value)
