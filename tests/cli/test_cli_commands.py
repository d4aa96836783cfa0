"""The commands, run in process: output, config effects, one-line errors, and the stub-server round trips."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from spacetimedb.cli.commands import COMMANDS
from spacetimedb.cli.config import SavedToken, edit_config, read_config
from spacetimedb.cli.identity import token_for_server
from spacetimedb.cli.servers import ServerConfig, resolve_server

from .conftest import assert_one_line_error
from .stub_server import PUBLIC_KEY_PEM, Reply, refused_port, running_stub, spacetime_routes

OTHER_PEM = PUBLIC_KEY_PEM.replace("MFkw", "MFkx")


def lock_file(config_path: Path) -> Path:
    return config_path.with_suffix(".lock")


# -- server add / list / remove / set-default ----------------------------------------------------------


def test_server_add_saves_and_lists(spacetime, config_path: Path):
    result = spacetime("server", "add", "http://10.0.0.5:3000/", "--name", "lab", "--no-fingerprint")
    assert result.code == 0, result
    assert result.out == "Host: 10.0.0.5:3000\nProtocol: http\nAdded server lab: http://10.0.0.5:3000\n"
    listed = spacetime("server", "list")
    assert listed.code == 0
    lines = listed.out.splitlines()
    assert lines[0].split() == ["DEFAULT", "HOSTNAME", "PROTOCOL", "NICKNAME"]  # upstream's columns
    assert lines[1].split() == ["***", "127.0.0.1:3000", "http", "local"]
    assert lines[2].split() == ["10.0.0.5:3000", "http", "lab"]
    assert not lock_file(config_path).exists()


def test_server_list_json(spacetime):
    spacetime("server", "add", "https://db.example.com", "--name", "prod", "--no-fingerprint", "--default")
    rows = json.loads(spacetime("server", "list", "--json").out)
    assert rows == [
        {
            "default": False,
            "nickname": "local",
            "host": "127.0.0.1:3000",
            "protocol": "http",
            "url": "http://127.0.0.1:3000",
            "fingerprint": None,
            "identity": None,
        },
        {
            "default": True,
            "nickname": "prod",
            "host": "db.example.com",
            "protocol": "https",
            "url": "https://db.example.com",
            "fingerprint": None,
            "identity": None,
        },
    ]


def test_server_list_does_not_create_the_config(spacetime, config_path: Path):
    assert spacetime("server", "list").code == 0
    assert not config_path.parent.exists()


def test_server_set_default_and_remove(spacetime, config_path: Path):
    spacetime("server", "add", "http://10.0.0.5:3000", "--name", "lab", "--no-fingerprint")
    result = spacetime("server", "set-default", "lab")
    assert (result.code, result.out) == (0, "Default server: lab (http://10.0.0.5:3000)\n")
    assert read_config(config_path).default_server_name() == "lab"
    removed = spacetime("server", "remove", "http://10.0.0.5:3000")
    assert removed.code == 0
    assert removed.out.splitlines() == [
        "Removed server lab: http://10.0.0.5:3000",
        "There is no default server now; choose one with `spacetime server set-default NICK`.",
    ]
    config = read_config(config_path)
    assert [server.nickname for server in config.servers()] == ["local"]
    assert config.default_server_name() is None


def test_server_remove_keeps_the_token_of_the_host(spacetime, config_path: Path):
    with edit_config(config_path) as config:
        config.save_token("127.0.0.1:3000", SavedToken("tok", "id"))
    assert spacetime("server", "remove", "local").code == 0
    assert read_config(config_path).saved_token("127.0.0.1:3000") == SavedToken("tok", "id")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("server", "add", "http://127.0.0.1:3000", "--name", "again", "--no-fingerprint"),
            "already saved as 'local'",
        ),
        (
            ("server", "add", "http://10.0.0.1:1", "--name", "local", "--no-fingerprint"),
            "nickname 'local' is already",
        ),
        (("server", "add", "10.0.0.1:1", "--name", "x", "--no-fingerprint"), "needs a protocol"),
        (
            ("server", "add", "http://10.0.0.1:1", "--name", "a.b", "--no-fingerprint"),
            "invalid server nickname",
        ),
        (("server", "remove", "nope"), "no saved server named 'nope'"),
        (("server", "set-default", "nope"), "no saved server named 'nope'"),
        (("server", "ping", "nope"), "no saved server named 'nope'"),
        (("login", "show", "-s", "nope"), "no saved server named 'nope'"),
        (("logout", "-s", "ftp://x"), "protocol must be http or https"),
    ],
)
def test_failures_are_one_line_and_leave_no_lock(spacetime, config_path: Path, args, message):
    result = spacetime(*args)
    assert_one_line_error(result, contains=message)
    assert result.code == 1
    assert not lock_file(config_path).exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("server", "add", "http://x:1"), "Missing option '--name'"),
        (("server", "add", "--name", "x"), "Missing argument 'NAME|URL'"),
        (("server", "frobnicate"), "No such command 'frobnicate'"),
        (("frobnicate",), "No such command 'frobnicate'"),
        (("server", "list", "--bogus"), "No such option '--bogus'"),
        (("login",), "choose how to log in"),
        (("login", "--server-issued-login", "local", "show"), "cannot be combined"),
        (("logout", "--all", "-s", "local"), "cannot be combined"),
    ],
)
def test_usage_errors_exit_2_with_a_help_hint_and_no_lock(spacetime, config_path: Path, args, message):
    result = spacetime(*args)
    assert_one_line_error(result, contains=message)
    assert result.code == 2
    assert result.err_lines[-1].startswith("hint: see `spacetime")
    assert not config_path.parent.exists()


def test_a_malformed_config_fails_every_command_in_one_line(spacetime, config_path: Path):
    config_path.parent.mkdir(parents=True)
    config_path.write_text("default_server = [\n")
    for args in (("server", "list"), ("server", "add", "http://x:1", "--name", "x", "--no-fingerprint")):
        assert_one_line_error(spacetime(*args), contains="is not valid TOML")
    assert not lock_file(config_path).exists()


def test_a_bad_lock_timeout_setting_is_one_line(spacetime, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SPACETIME_CONFIG_LOCK_TIMEOUT", "soon")
    assert_one_line_error(
        spacetime("server", "set-default", "local"), contains="SPACETIME_CONFIG_LOCK_TIMEOUT"
    )


def test_config_path_option_overrides_the_environment(spacetime, tmp_path: Path, config_path: Path):
    elsewhere = tmp_path / "elsewhere" / "my.toml"
    result = spacetime(
        "--config-path", str(elsewhere), "server", "add", "http://x:1", "--name", "x", "--no-fingerprint"
    )
    assert result.code == 0, result
    assert [server.nickname for server in read_config(elsewhere).servers()] == ["local", "x"]
    assert not config_path.exists()
    assert not (tmp_path / "elsewhere" / "my.lock").exists()


# -- help, version, laziness ---------------------------------------------------------------------------


def test_every_command_has_help(spacetime):
    for args in (
        (),
        ("server",),
        ("server", "add"),
        ("server", "list"),
        ("server", "remove"),
        ("server", "set-default"),
        ("server", "ping"),
        ("server", "fingerprint"),
        ("login",),
        ("login", "show"),
        ("logout",),
        ("version",),
    ):
        result = spacetime(*args, "--help")
        assert result.code == 0, (args, result)
        assert result.out.startswith("Usage: spacetime"), (args, result.out)


def test_top_level_help_lists_exactly_the_registered_commands(spacetime):
    out = spacetime("--help").out
    rows = [line.split(None, 1) for line in out.split("Commands:\n", 1)[1].splitlines() if line.strip()]
    assert rows == [[name, COMMANDS[name].short_help] for name in sorted(COMMANDS)]


def test_bare_group_prints_its_help(spacetime):
    result = spacetime("server")
    assert result.code == 2
    assert "Commands:" in result.out and "add" in result.out
    assert result.err == ""


def test_version(spacetime):
    result = spacetime("version")
    assert result.code == 0
    assert result.out.splitlines()[0] == "spacetime CLI 0.1.0"
    versions = json.loads(spacetime("version", "--json").out)
    assert versions["cli"] == "0.1.0" and versions["package"] == "0.1.0"
    assert versions["python"].startswith("3.")


def test_help_imports_no_command_module_and_nothing_heavy():
    probe = textwrap.dedent(
        """
        import sys
        from spacetimedb.cli.main import run
        code = run(["--help"])
        heavy = sorted(
            name for name in sys.modules
            if name.startswith(("spacetimedb.cli.commands.", "rich", "tomlkit", "aiohttp", "spacetimedb.server"))
            or name in ("spacetimedb.cli.config", "spacetimedb.cli.lock", "spacetimedb.cli.http")
        )
        print(code, heavy)
        """
    )
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines()[-1] == "0 []"


def test_registered_commands_resolve_to_click_commands_of_the_same_name():
    from spacetimedb.cli.main import cli

    ctx = cli.make_context("spacetime", ["version"])
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None and command.name == name


# -- ping, fingerprint, login against a stub server ----------------------------------------------------


@pytest.fixture
def stub():
    with running_stub(spacetime_routes()) as server:
        yield server


def add_stub(spacetime, stub, name: str = "stub", *extra: str) -> None:
    result = spacetime("server", "add", stub.url, "--name", name, "--no-fingerprint", *extra)
    assert result.code == 0, result


def test_server_ping_online(spacetime, stub):
    add_stub(spacetime, stub)
    result = spacetime("server", "ping", "stub")
    assert (result.code, result.out) == (0, f"Server is online: {stub.url}\n")
    assert spacetime("server", "ping", stub.url).code == 0
    assert [(seen.method, seen.path) for seen in stub.requests] == [("GET", "/v1/ping")] * 2


def test_server_ping_uses_the_default_server(spacetime, stub):
    add_stub(spacetime, stub, "stub", "--default")
    assert spacetime("server", "ping").code == 0


def test_server_ping_reports_a_server_error_in_one_line(spacetime, stub):
    stub.routes[("GET", "/v1/ping")] = Reply(500, b"database on fire\nsecond line")
    add_stub(spacetime, stub)
    assert_one_line_error(
        spacetime("server", "ping", "stub"),
        contains=f"GET {stub.url}/v1/ping failed: 500 Internal Server Error: database on fire second line",
    )


def test_unreachable_server_names_the_url_and_suggests_spacetime_start(spacetime):
    with refused_port() as port:
        result = spacetime("server", "ping", f"http://127.0.0.1:{port}")
    assert_one_line_error(result, contains=f"cannot reach the server at http://127.0.0.1:{port}/v1/ping")
    assert "spacetime start" in result.err_lines[-1]


def test_server_add_fetches_the_fingerprint(spacetime, stub, config_path: Path):
    result = spacetime("server", "add", stub.url, "--name", "stub")
    assert result.code == 0, result
    assert result.out.splitlines()[3].startswith("Fingerprint: SHA256:")
    assert read_config(config_path).find_server("stub").ecdsa_public_key == PUBLIC_KEY_PEM
    row = json.loads(spacetime("server", "list", "--json").out)[1]
    assert row["fingerprint"] == result.out.splitlines()[3].removeprefix("Fingerprint: ")


def test_server_add_of_an_unreachable_server_suggests_no_fingerprint(spacetime, config_path: Path):
    with refused_port() as port:
        result = spacetime("server", "add", f"http://127.0.0.1:{port}", "--name", "down")
    assert_one_line_error(result, contains="cannot reach the server")
    assert "spacetime start" in result.err_lines[-1] and "--no-fingerprint" in result.err_lines[-1]
    assert read_config(config_path).find_server("down") is None


def test_server_add_refuses_a_duplicate_before_contacting_the_server(spacetime, stub):
    add_stub(spacetime, stub)
    assert_one_line_error(spacetime("server", "add", stub.url, "--name", "other"), contains="already saved")
    assert stub.requests == []


def test_server_add_refuses_a_server_that_returns_no_pem(spacetime, stub):
    stub.routes[("GET", "/v1/identity/public-key")] = Reply(200, b"<html>hello</html>")
    assert_one_line_error(
        spacetime("server", "add", stub.url, "--name", "stub"), contains="did not return a PEM"
    )


def test_server_fingerprint_saves_then_reports_unchanged(spacetime, stub, config_path: Path):
    add_stub(spacetime, stub)
    first = spacetime("server", "fingerprint", "stub")
    assert first.code == 0 and first.out.startswith("Saved fingerprint of stub: SHA256:")
    assert read_config(config_path).find_server("stub").ecdsa_public_key == PUBLIC_KEY_PEM
    second = spacetime("server", "fingerprint", "stub")
    assert second.code == 0 and second.out.startswith("Fingerprint of stub is unchanged: SHA256:")


def test_a_changed_fingerprint_needs_yes(spacetime, stub, config_path: Path):
    add_stub(spacetime, stub)
    assert spacetime("server", "fingerprint", "stub").code == 0
    stub.routes[("GET", "/v1/identity/public-key")] = Reply(200, OTHER_PEM.encode())
    refused = spacetime("server", "fingerprint", "stub")
    assert_one_line_error(refused, contains="without confirmation")
    assert "has changed" in refused.out
    assert read_config(config_path).find_server("stub").ecdsa_public_key == PUBLIC_KEY_PEM
    accepted = spacetime("server", "fingerprint", "stub", "--yes")
    assert accepted.code == 0
    assert read_config(config_path).find_server("stub").ecdsa_public_key == OTHER_PEM


def test_fingerprint_of_an_unsaved_url_is_only_printed(spacetime, stub, config_path: Path):
    result = spacetime("server", "fingerprint", stub.url)
    assert result.code == 0 and "not saved" in result.out
    assert not config_path.exists()


def test_login_saves_the_token_for_the_servers_host_only(spacetime, stub, config_path: Path):
    add_stub(spacetime, stub)
    result = spacetime("login", "--server-issued-login", "stub")
    assert result.code == 0, result
    assert result.out.splitlines() == [
        f"Logged in with identity {'c200' + 'ab' * 30}",  # upstream's words (smoketest standalone/cli/auth.rs)
        f"(on stub ({stub.url}); this identity is valid only on that server)",
    ]
    config = read_config(config_path)
    assert config.saved_tokens() == {stub.host: SavedToken("header.payload.signature.1", "c200" + "ab" * 30)}
    assert ("POST", "/v1/identity") in [(seen.method, seen.path) for seen in stub.requests]
    # The default server (local) has no token: switching servers does not carry one over.
    assert spacetime("login", "show").out.startswith("You are not logged in.")
    shown = spacetime("login", "show", "-s", "stub", "--token")
    assert shown.out.splitlines() == [
        f"You are logged in as {'c200' + 'ab' * 30}",
        f"(on stub ({stub.url}))",
        "Your auth token (don't share this!) is header.payload.signature.1",
    ]
    as_json = json.loads(spacetime("login", "show", "-s", stub.url, "--json").out)
    assert as_json == {"server": "stub", "url": stub.url, "logged_in": True, "identity": "c200" + "ab" * 30}


def test_logging_in_again_replaces_the_token_and_says_so(spacetime, stub, config_path: Path):
    add_stub(spacetime, stub)
    spacetime("login", "--server-issued-login", "stub")
    again = spacetime("login", "--server-issued-login", stub.url)
    assert again.code == 0
    assert again.out.splitlines()[0] == f"Logged out (identity {'c200' + 'ab' * 30})."
    assert read_config(config_path).saved_token(stub.host).token == "header.payload.signature.2"


def test_logout_forgets_only_that_servers_token(spacetime, stub, config_path: Path):
    add_stub(spacetime, stub)
    with edit_config(config_path) as config:
        config.save_token("127.0.0.1:3000", SavedToken("local-token", "aa"))
    spacetime("login", "--server-issued-login", "stub")
    result = spacetime("logout", "-s", "stub")
    assert result.code == 0
    assert result.out.splitlines() == [
        f"Logged out (identity {'c200' + 'ab' * 30}).",
        f"(forgot the token saved for stub ({stub.url}))",
    ]
    assert read_config(config_path).saved_tokens() == {"127.0.0.1:3000": SavedToken("local-token", "aa")}
    assert spacetime("logout", "-s", "stub").out.startswith(
        "You are not logged in.\n(no token was saved for stub"
    )
    assert spacetime("logout").out.startswith("Logged out (identity aa).\n(forgot the token saved for local")
    assert read_config(config_path).saved_tokens() == {}


def test_logout_all(spacetime, config_path: Path):
    with edit_config(config_path) as config:
        config.save_token("a:1", SavedToken("x"))
        config.save_token("b:2", SavedToken("y"))
    assert spacetime("logout", "--all").out == "Forgot 2 saved token(s).\n"
    assert read_config(config_path).saved_tokens() == {}
    assert spacetime("logout", "--all").out == "No tokens were saved.\n"


def test_login_to_an_unreachable_server_is_one_line(spacetime):
    with refused_port() as port:
        result = spacetime("login", "--server-issued-login", f"http://127.0.0.1:{port}")
    assert_one_line_error(result, contains="cannot reach the server")


def test_login_with_a_bad_identity_reply_is_one_line(spacetime, stub):
    stub.routes[("POST", "/v1/identity")] = Reply.json({"identity": "x"})
    assert_one_line_error(
        spacetime("login", "--server-issued-login", stub.url),
        contains="did not return an identity and a token",
    )
    stub.routes[("POST", "/v1/identity")] = Reply(200, b"not json")
    assert_one_line_error(spacetime("login", "--server-issued-login", stub.url), contains="not JSON")


def test_token_for_server_obtains_once_then_reuses(stub, config_path: Path):
    target = resolve_server(read_config(config_path), stub.url)
    said: list[str] = []
    first = token_for_server(config_path, target, announce=said.append)
    second = token_for_server(config_path, target, announce=said.append)
    assert first == second == "header.payload.signature.1"
    assert len(said) == 1 and "saved a new identity" in said[0]
    assert [seen.path for seen in stub.requests] == ["/v1/identity"]


def test_token_for_server_never_hands_out_another_hosts_token(stub, config_path: Path):
    with edit_config(config_path) as config:
        config.save_token("127.0.0.1:3000", SavedToken("issued-by-local", "aa"))
        config.add_server(ServerConfig("stub", stub.host, "http"))
    target = resolve_server(read_config(config_path), "stub")
    assert token_for_server(config_path, target, announce=lambda _: None) == "header.payload.signature.1"
    assert all(seen.authorization is None for seen in stub.requests)
