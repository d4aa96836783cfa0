"""The server's tunables: one table serves both command lines, and bad values are refused naming the flag."""

import subprocess
import sys

import pytest

from spacetimedb.server.tunables import TUNABLES, server_options
from tests.conftest import ROOT


def test_defaults():
    options = server_options()
    assert options.workers.reducer_budget_seconds == 5.0
    assert options.workers.load_budget_seconds == 30.0  # 6x the reducer budget
    assert options.workers.query_row_limit == 100_000 and options.workers.query_byte_limit == 16 << 20
    assert options.max_outbox_bytes == 64 << 20 and options.publishers is None and not options.unsafe_modules


def test_values_from_a_command_line():
    options = server_options(
        {"reducer_budget": "1.5", "module_memory": "512MiB", "query_row_limit": "0", "unsafe_modules": True}
    )
    assert options.workers.reducer_budget_seconds == 1.5 and options.workers.load_budget_seconds == 9.0
    assert options.workers.sandbox.memory_bytes == 512 << 20
    assert options.workers.query_row_limit is None  # 0: no limit
    assert options.unsafe_modules


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"reducer_budget": "soon"}, "--reducer-budget"),
        ({"reducer_budget": "0"}, "--reducer-budget"),
        ({"module_max_files": "8"}, "--module-max-files"),
        ({"query_byte_limit": "lots"}, "--query-byte-limit"),
        ({"publishers": "not-an-identity"}, "--publishers"),
        ({"cors_origins": "app.example"}, "--cors-origins"),
        ({"oidc_issuer": ["auth.example"]}, "--oidc-issuer"),
        ({"oidc_issuer": [42]}, "--oidc-issuer"),
        ({"no_such_thing": "1"}, "no_such_thing"),
    ],
)
def test_bad_values_name_their_flag(given, named):
    with pytest.raises(ValueError, match=named):
        server_options(given)


def test_a_repeatable_tunable_takes_a_list_or_one_value():
    from spacetimedb.server.oidc import OidcIssuer

    # a list, as the flag given twice or a TOML list in a config file
    options = server_options({"oidc_issuer": ["https://a.example", "https://b.example/realm#my-app"]})
    assert options.oidc_issuers == (
        OidcIssuer("https://a.example"),
        OidcIssuer("https://b.example/realm", "my-app"),
    )
    assert server_options({"oidc_issuer": "https://a.example"}).oidc_issuers == (
        OidcIssuer("https://a.example"),
    )
    assert server_options().oidc_issuers == ()


@pytest.mark.parametrize(
    "command", [["-m", "spacetimedb.server", "--help"], ["-m", "spacetimedb.cli.main", "start", "--help"]]
)
def test_both_command_lines_offer_every_tunable(command):
    result = subprocess.run([sys.executable, *command], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    for tunable in TUNABLES:
        assert tunable.flag in result.stdout


def test_spacetime_start_and_python_m_take_a_repeatable_flag_many_times(capsys):
    import click
    from click.testing import CliRunner

    from spacetimedb.cli.commands.start import tunable_options
    from spacetimedb.server.__main__ import main as server_main

    seen = {}

    @click.command()
    @tunable_options
    def start(**tunables):
        seen.update(tunables)

    result = CliRunner().invoke(
        start, ["--oidc-issuer", "https://a.example", "--oidc-issuer", "https://b.example"]
    )
    assert result.exit_code == 0, result.output
    assert server_options({"oidc_issuer": seen["oidc_issuer"]}).oidc_issuers[1].url == "https://b.example"
    # python -m spacetimedb.server refuses a bad one by name before starting anything
    with pytest.raises(SystemExit):
        server_main(["--in-memory", "--oidc-issuer", "https://a.example", "--oidc-issuer", "not-a-url"])
    assert "--oidc-issuer takes an issuer URL" in capsys.readouterr().err
