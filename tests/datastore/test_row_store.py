"""``RowStore``: a table's rows by row id, in a list for small dense ids and a dict for the rest, behaves as the
dict of rows it replaced, whatever order ids come and go in."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spacetimedb.datastore.table import RowStore

# mostly small ids (the list's), some far beyond it and some negative (the dict's)
RIDS = st.one_of(st.integers(0, 80), st.integers(-5, -1), st.integers(1_000, 1_010), st.just(1 << 70))
# one id at a time; or ids start .. start + 599 in a run, set or popped in order (dense enough to grow the list
# a few times, then sparse enough to shrink it)
OPS = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["set", "pop", "clear"]), RIDS),
        st.tuples(st.sampled_from(["fill", "drain"]), st.integers(0, 400)),
    ),
    max_size=60,
)


def same(store: RowStore, model: dict[int, tuple[Any, ...]]) -> None:
    assert len(store) == len(model)
    assert dict(store.items()) == model
    assert sorted(store) == sorted(model) == sorted(store.keys())
    assert sorted(store.values()) == sorted(model.values())
    for rid in list(model) + [-7, 81, 5_000]:
        assert store.get(rid) == model.get(rid)
        assert (rid in store) == (rid in model)
    # an id is in the list's range or in the dict, never both
    assert not [rid for rid in store.spill if 0 <= rid < len(store.slots)]


@settings(max_examples=300, deadline=None)
@given(OPS)
def test_a_row_store_holds_what_a_dict_would(ops: list[tuple[str, int]]) -> None:
    store, model = RowStore(), {}
    for step, (op, rid) in enumerate(ops):
        if op in ("fill", "drain"):
            for run_rid in range(rid, rid + 600):
                if op == "fill":
                    store[run_rid] = model[run_rid] = (run_rid, step)
                elif run_rid in model:
                    assert store.pop(run_rid) == model.pop(run_rid)
        elif op == "set":
            store[rid] = model[rid] = (rid, step)
        elif op == "pop":
            if rid in model:
                assert store.pop(rid) == model.pop(rid)
            else:
                with pytest.raises(KeyError):
                    store.pop(rid)
        else:
            store.clear()
            model.clear()
        same(store, model)


def test_dense_ids_live_in_the_list_and_sparse_ones_in_the_dict() -> None:
    store = RowStore()
    for rid in range(1, 1_001):
        store[rid] = (rid,)
    store[10**12] = (10**12,)
    store[-3] = (-3,)
    assert set(store.spill) == {10**12, -3}
    assert len(store.slots) <= 2 * 1_000 + 64
    assert list(store.values())[:3] == [(1,), (2,), (3,)]  # the list in id order, then the dict
    assert list(store)[-2:] == [10**12, -3]


def test_the_list_takes_in_ids_it_grows_over() -> None:
    """An id first put in the dict, because the list was too short to reach it, moves into the list once the
    list grows over it."""
    store = RowStore()
    store[500] = ("early",)
    assert 500 in store.spill
    for rid in range(400):
        store[rid] = (rid,)
    assert 500 not in store.spill and store.slots[500] == ("early",)
    assert store[500] == ("early",) and len(store) == 401


def test_a_list_that_empties_shrinks_and_its_rows_are_kept() -> None:
    store = RowStore()
    for rid in range(10_000):
        store[rid] = (rid,)
    grown = len(store.slots)
    for rid in range(0, 10_000, 2):
        store.pop(rid)
    for rid in range(1, 9_000, 2):
        store.pop(rid)
    assert len(store) == 500
    assert len(store.slots) < grown // 4
    assert sorted(store.values()) == [(rid,) for rid in range(9_001, 10_000, 2)]


def test_a_missing_id_raises_key_error() -> None:
    store = RowStore()
    store[3] = (3,)
    for rid in (4, 2, 10**9, -1):
        with pytest.raises(KeyError):
            store[rid]
    assert store.pop(3) == (3,) and len(store) == 0
    with pytest.raises(KeyError):
        store.pop(3)
