"""Identifier case conversion as SpacetimeDB computes it with the Rust crate ``convert_case`` (0.6): a name is split
into words at ``_``, ``-`` and spaces, between a lower-case letter and an upper-case one, between letters and
digits (both ways), and before the last capital of an acronym (``HTTPRequest`` -> ``HTTP`` ``Request``).

Upstream applies it in two places, and so do we: a V10 module's case-conversion policy gives canonical names
(``rawdef_decode``), and the code generator names files, keys and classes (``codegen.naming``). Both must agree
with upstream's, or names users type would differ (``conn.db.userProfile``, ``PersonAtLevel2``).
"""

from __future__ import annotations

_SEPARATORS = frozenset("_- ")


def _is_boundary(prev: str, char: str, following: str) -> bool:
    if prev.islower() and (char.isupper() or char.isdigit()):
        return True
    if prev.isdigit() and (char.isupper() or char.islower()):
        return True
    if prev.isupper() and char.isdigit():
        return True
    # an acronym ends before its last capital when a lower-case letter follows: "HTTPRequest"
    return prev.isupper() and char.isupper() and following.islower()


def split_words(name: str) -> list[str]:
    words: list[str] = []
    current = ""
    for i, char in enumerate(name):
        if char in _SEPARATORS:
            if current:
                words.append(current)
            current = ""
            continue
        following = name[i + 1] if i + 1 < len(name) else ""
        if current and _is_boundary(current[-1], char, following):
            words.append(current)
            current = ""
        current += char
    if current:
        words.append(current)
    return words


def _capital(word: str) -> str:
    return word[:1].upper() + word[1:].lower()


def snake_case(name: str) -> str:
    return "_".join(word.lower() for word in split_words(name))


def pascal_case(name: str) -> str:
    return "".join(_capital(word) for word in split_words(name))


def camel_case(name: str) -> str:
    words = split_words(name)
    if not words:
        return ""
    return words[0].lower() + "".join(_capital(word) for word in words[1:])
