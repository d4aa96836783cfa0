"""What a module author sees when they use a table handle as it cannot be used."""

from __future__ import annotations

import pytest

from spacetimedb.testing import ReducerError, TestDatabase

MODULE = """
from typing import Annotated

from spacetimedb import PrimaryKey, ReducerContext, reducer, table, u32


@table
class Score:
    player: str
    points: u32


@table
class Player:
    name: Annotated[str, PrimaryKey]
    points: u32


@reducer
def bump_score(ctx: ReducerContext) -> None:
    ctx.db.score.update(Score(player="ada", points=1))


@reducer
def bump_player(ctx: ReducerContext) -> None:
    ctx.db.player.update(Player(name="ada", points=1))


@reducer
def typo(ctx: ReducerContext) -> None:
    ctx.db.player.nmae.find("ada")
"""


@pytest.fixture
def db(tmp_path) -> TestDatabase:
    path = tmp_path / "scores.py"
    path.write_text(MODULE)
    with TestDatabase.load(path) as database:
        yield database


def test_update_on_a_table_without_a_primary_key_says_what_updates_need(db: TestDatabase) -> None:
    with pytest.raises(ReducerError) as info:
        db.call("bump_score")
    message = str(info.value)
    assert "table `score` has no primary key or unique column" in message
    assert "needs a column marked PrimaryKey or Unique" in message
    assert "ScoreHandle" not in message


def test_update_on_a_table_with_a_primary_key_points_at_its_index(db: TestDatabase) -> None:
    with pytest.raises(ReducerError, match=r"use its unique index: ctx\.db\.player\.name\.update\(\.\.\.\)"):
        db.call("bump_player")


def test_an_unknown_index_lists_the_indexes(db: TestDatabase) -> None:
    with pytest.raises(
        ReducerError, match=r"table `player` has no attribute or index `nmae` \(its indexes: name;"
    ):
        db.call("typo")
