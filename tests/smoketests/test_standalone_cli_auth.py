"""Port of upstream's standalone/cli/auth.rs: login and logout with upstream's messages ("Logged in with identity",
"Logged out (identity ...).", "You are not logged in.", "You are logged in as", "Token saved."), and logout
removing upstream's global login keys from the config."""

from __future__ import annotations

import tomllib

import pytest
import tomlkit

from tests.cli_e2e.conftest import User

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

NOT_APPLICABLE: dict[str, str] = {}


@pytest.fixture
def user(alice: User) -> User:
    """alice, with the test server as the default server (as upstream's smoketest config has it)."""
    added = alice("server", "add", "--url", alice.url, "test", "-d", "--no-fingerprint", server=False)
    assert added.code == 0, added
    return alice


def read_config(user: User) -> dict[str, object]:
    return tomllib.loads((user.config_dir / "cli.toml").read_text())


def login(user: User) -> str:
    result = user("login", "--server-issued-login", user.url, server=False)
    assert result.code == 0, result
    return result.out


def assert_logged_out_keys_gone(user: User) -> None:
    config = read_config(user)
    assert "spacetimedb_token" not in config and "web_session_token" not in config, config
    assert config.get("tokens", {}) == {}, config  # our per-server token went too


def logout_removes_cached_tokens(user: User, *, web_session_token: bool) -> None:
    login(user)
    if web_session_token:
        path = user.config_dir / "cli.toml"
        document = tomlkit.parse(path.read_text())
        document["web_session_token"] = "fake-web-session-token"
        path.write_text(tomlkit.dumps(document))
    logout = user("logout", server=False)
    assert logout.code == 0, logout
    assert "Logged out (identity " in logout.out, logout.out
    assert_logged_out_keys_gone(user)


def test_cli_logout_removes_cached_tokens(user: User):
    logout_removes_cached_tokens(user, web_session_token=True)


def test_cli_logout_removes_cached_tokens_without_web_token(user: User):
    logout_removes_cached_tokens(user, web_session_token=False)


def test_cli_logout_is_idempotent(user: User):
    login(user)
    first = user("logout", server=False)
    assert first.code == 0 and "Logged out " in first.out, first
    second = user("logout", server=False)
    assert second.code == 0 and "You are not logged in." in second.out, second


def test_cli_direct_login_works_and_shows_core_messages(user: User):
    assert "Logged in " in login(user)
    show = user("login", "show", server=False)
    assert show.code == 0 and "You are logged in as " in show.out, show


def test_cli_logging_in_twice_works(user: User):
    login(user)
    second = login(user)
    assert "Logged out (identity " in second, second
    assert "Logged in with identity " in second, second


def test_cli_login_with_token(user: User):
    result = user("login", "--token", "test-dummy-token", "--no-browser", server=False, timeout=5)
    assert result.code == 0, result
    assert "Token saved." in result.out, result.out
