"""The keynote workload: which accounts each transfer touches, and the pre-encoded requests for every system.

Pairs are drawn once per alpha from a seeded PRNG and shared by every system through a file, so all of them
replay the same sequence. Account ids follow a Zipf distribution: the id ranked k (id k-1) is drawn with
probability proportional to 1/k**alpha (alpha 0 = uniform), by inverse CDF; a transfer's second id is redrawn
until it differs from the first (like SpacetimeDB's keynote-2 benchmark).
"""

from __future__ import annotations

import itertools
import random
import struct
from array import array
from collections.abc import Iterator
from pathlib import Path

AMOUNT = 1
ACCOUNTS = 100_000
INITIAL_BALANCE = 1_000_000_000

# CallReducer (client message tag 3): request_id u32, flags u8, reducer str, args bytes; see protocol-reference §4.2
_CALL_TRANSFER = struct.Struct("<BIBI8sI")
_TRANSFER_ARGS = struct.Struct("<IIq")
_CALL_HEADER_SIZE = _CALL_TRANSFER.size
_TRANSFER_NAME = b"transfer"


def draw_pairs(accounts: int, alpha: float, count: int, seed: int) -> array:
    """``count`` (from, to) pairs of distinct ids, flattened into one array of u32."""
    ids = _zipf_ids(random.Random(f"{seed}:{alpha}"), accounts, alpha)
    out = array("I")
    for _ in range(count):
        a = next(ids)
        b = next(ids)
        while b == a:
            b = next(ids)
        out.append(a)
        out.append(b)
    return out


def _zipf_ids(rng: random.Random, accounts: int, alpha: float) -> Iterator[int]:
    """An endless stream of ids, drawn in batches (``random.choices`` does the inverse-CDF search in C)."""
    population = range(accounts)
    cum_weights = (
        None
        if alpha == 0
        else list(itertools.accumulate(1.0 / (rank**alpha) for rank in range(1, accounts + 1)))
    )
    while True:
        yield from rng.choices(population, cum_weights=cum_weights, k=65_536)


def write_pairs(path: Path, pairs: array) -> None:
    with path.open("wb") as file:
        pairs.tofile(file)


def read_pairs(path: Path) -> array:
    pairs = array("I")
    pairs.frombytes(path.read_bytes())
    return pairs


def call_transfer_message(request_id: int, from_id: int, to_id: int, amount: int = AMOUNT) -> bytes:
    """The BSATN ``CallReducer`` message for one transfer (a v2 message; v3 frames may concatenate them)."""
    args = _TRANSFER_ARGS.pack(from_id, to_id, amount)
    return _CALL_TRANSFER.pack(3, request_id, 0, len(_TRANSFER_NAME), _TRANSFER_NAME, len(args)) + args


def transfer_json(from_id: int, to_id: int, amount: int = AMOUNT) -> bytes:
    """The JSON body the HTTP peers receive (the same three arguments, by name)."""
    return b'{"from_id":%d,"to_id":%d,"amount":%d}' % (from_id, to_id, amount)


def summarize_skew(pairs: array, top: int = 10) -> float:
    """Share of all account touches that hit the ``top`` most frequent ids (how hot the hot set is)."""
    counts: dict[int, int] = {}
    for account in pairs:
        counts[account] = counts.get(account, 0) + 1
    hottest = sorted(counts.values(), reverse=True)[:top]
    return sum(hottest) / len(pairs) if pairs else 0.0
