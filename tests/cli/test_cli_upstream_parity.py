"""Pieces of the CLI's parity with SpacetimeDB's (issue 23) that need no server: the similar-name rule of
upstream's "No such reducer" message, ``--flag=VALUE`` parsing, ``--yes`` values, ``server edit`` and the config
keys upstream's CLI uses."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from spacetimedb.cli.commands.publish import Answers
from spacetimedb.cli.config import read_config
from spacetimedb.cli.context import resolve_config_path
from spacetimedb.cli.options import EqualsValueCommand
from spacetimedb.cli.similar import best_match, by_closeness, edit_distance

from .conftest import assert_one_line_error


def test_edit_distance_counts_an_adjacent_swap_as_one_edit():
    assert edit_distance("say_hello", "say_hello") == 0
    assert edit_distance("say_hell", "say_hello") == 1
    assert edit_distance("sya_hello", "say_hello") == 1  # upstream's edit_distance.rs: transpositions
    assert edit_distance("", "abc") == 3


def test_best_match_follows_upstreams_rule():
    """crates/cli/src/edit_distance.rs find_best_match_for_name: case-insensitive equality first, then within a
    third of the typed length, then the same words in another order."""
    names = ["say_hello", "return_person", "hello_world"]
    assert best_match(names, "SAY_HELLO") == "say_hello"
    assert best_match(names, "say_hell") == "say_hello"
    assert best_match(names, "return_perso") == "return_person"
    assert best_match(names, "world_hello") == "hello_world"
    assert best_match(names, "non_existent") is None
    assert best_match(["ab"], "xy") is None  # a limit of 1 for short names: two edits are too many


def test_by_closeness_keeps_ties_in_order():
    assert by_closeness(["b2", "a1", "zzzz"], "a2") == ["b2", "a1", "zzzz"]
    assert by_closeness(["zzzz", "say_hi"], "say_h") == ["say_hi", "zzzz"]


def _parsed(*args: str) -> dict[str, object]:
    @click.command(cls=EqualsValueCommand, equals_values={"--delete-data": "--delete-data-mode"})
    @click.argument("name", required=False)
    @click.option("--delete-data", is_flag=True)
    @click.option("--delete-data-mode", hidden=True)
    def command(**kwargs: object) -> None:
        pass

    with command.make_context("publish", list(args)) as ctx:
        return dict(ctx.params)


def test_a_flag_takes_a_value_only_with_equals():
    """Upstream's require_equals (crates/cli/src/common_args.rs clear_database): `--delete-data my-db` is the flag
    and a database name, `--delete-data=on-conflict` a value."""
    assert _parsed("--delete-data", "my-db") == {
        "name": "my-db",
        "delete_data": True,
        "delete_data_mode": None,
    }
    assert _parsed("--delete-data=on-conflict", "db") == {
        "name": "db",
        "delete_data": False,
        "delete_data_mode": "on-conflict",
    }
    assert _parsed("--", "--delete-data=x") == {
        "name": "--delete-data=x",
        "delete_data": False,
        "delete_data_mode": None,
    }


def test_yes_values_answer_some_questions():
    """crates/cli/src/subcommands/publish.rs YesValue: all, remote, migrate, break-clients, skip-login, delete-data."""
    assert Answers.parse(True, (), False) == Answers(break_clients=True, delete_data=True)
    assert Answers.parse(False, ("break-clients",), False) == Answers(break_clients=True, delete_data=False)
    assert Answers.parse(False, ("remote,delete-data",), False) == Answers(
        break_clients=False, delete_data=True
    )
    assert Answers.parse(False, (), True) == Answers(break_clients=True, delete_data=False)  # --break-clients
    with pytest.raises(click.BadParameter, match="'bogus'"):
        Answers.parse(False, ("bogus",), False)


def test_publish_refuses_an_unknown_yes_value_or_mode(spacetime, tmp_path: Path):
    module = tmp_path / "m.py"
    module.write_text("")
    assert_one_line_error(
        spacetime("publish", "db", "-p", str(module), "--yes=bogus"), contains="--yes takes one or more of"
    )
    assert_one_line_error(
        spacetime("publish", "db", "-p", str(module), "--delete-data=sometimes"), contains="on-conflict"
    )


def test_server_edit_renames_and_repoints_keeping_the_default(spacetime, config_path: Path):
    assert (
        spacetime("server", "add", "prod", "--url", "https://a.example.com", "-d", "--no-fingerprint").code
        == 0
    )
    edited = spacetime(
        "server",
        "edit",
        "prod",
        "--new-name",
        "live",
        "--url",
        "https://b.example.com:8443",
        "--no-fingerprint",
    )
    assert edited.code == 0, edited
    assert edited.out.splitlines() == [
        "Changing nickname from prod to live",
        "Changing host from a.example.com to b.example.com:8443",
    ]
    config = read_config(config_path)
    assert config.default_server_name() == "live"
    assert config.find_server("live").url == "https://b.example.com:8443"
    assert config.find_server("prod") is None
    clash = spacetime("server", "edit", "live", "--new-name", "local")
    assert_one_line_error(clash, contains="already used")


def test_root_dir_puts_the_config_under_it(tmp_path: Path):
    """Upstream's --root-dir: DIR/config/cli.toml (an explicit --config-path still wins)."""
    assert resolve_config_path(None, {}, tmp_path) == tmp_path.absolute() / "config" / "cli.toml"
    assert resolve_config_path(tmp_path / "x.toml", {}, tmp_path) == (tmp_path / "x.toml").absolute()


def test_listen_addr_is_read_from_the_config(tmp_path: Path):
    path = tmp_path / "cli.toml"
    path.write_text('listen_addr = "127.0.0.1:4000"\n')
    assert read_config(path).listen_addr() == "127.0.0.1:4000"
    path.write_text("listen_addr = 4000\n")
    with pytest.raises(Exception, match="listen_addr must be a string"):
        read_config(path).listen_addr()
