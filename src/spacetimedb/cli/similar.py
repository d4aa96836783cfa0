"""Which known name a mistyped one probably meant, by the rule upstream's CLI uses for reducer names.

A case-insensitive equal name wins; else the closest name within an edit distance of a third of the typed
name's length (at least 1; an adjacent swap counts as one edit); else a name with the same ``_``-separated
words in another order.
"""

from __future__ import annotations

from collections.abc import Sequence


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance where swapping two adjacent characters is one edit (optimal string alignment)."""
    before_previous: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            substitution = previous[j - 1] + (a[i - 1] != b[j - 1])
            current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], before_previous[j - 2] + 1)
        before_previous, previous = previous, current
    return previous[len(b)]


def best_match(candidates: Sequence[str], typed: str) -> str | None:
    """The candidate ``typed`` most probably meant, or None when none is close enough."""
    for candidate in candidates:
        if candidate.upper() == typed.upper():
            return candidate
    limit = max(len(typed), 3) // 3
    best: str | None = None
    for candidate in candidates:
        distance = edit_distance(typed, candidate)
        if distance <= limit:
            best, limit = candidate, distance - 1
            if distance == 0:
                return candidate
    if best is not None:
        return best
    words = sorted(typed.split("_"))
    return next((c for c in reversed(candidates) if sorted(c.split("_")) == words), None)


def by_closeness(candidates: Sequence[str], typed: str) -> list[str]:
    """``candidates`` from the closest to ``typed`` to the farthest (a stable sort: ties keep their order)."""
    return sorted(candidates, key=lambda candidate: edit_distance(typed, candidate))
