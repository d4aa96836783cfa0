"""cli.toml: the fresh config, comment-preserving edits, tokens per host, validation, atomic saves, -s resolution."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import tomlkit

from spacetimedb.cli.config import Config, SavedToken, edit_config, read_config, save_config
from spacetimedb.cli.errors import CliError, ConfigError
from spacetimedb.cli.servers import (
    ServerConfig,
    host_key,
    parse_server_url,
    resolve_server,
    validate_nickname,
)

PEM = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"

HAND_EDITED = """\
# My spacetime config -- edited by hand.
default_server = "local" # the one I use

# my laptop
[[server_configs]]
nickname = "local"
host = "127.0.0.1:3000"
protocol = "http"

# the staging box
[[server_configs]]
protocol = "https" # keys in my own order
host = "staging.example.com"
nickname = "staging"

# settings some other tool reads
[extra]
answer = 42
spacetimedb_token = "legacy-global-token"
"""


def is_subsequence(needles: list[str], haystack: list[str]) -> bool:
    remaining = iter(haystack)
    return all(any(line == needle for line in remaining) for needle in needles)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_fresh_config_has_local_as_default(config_path: Path):
    config = read_config(config_path)
    assert config.servers() == [ServerConfig("local", "127.0.0.1:3000", "http")]
    assert config.default_server_name() == "local"
    assert not config_path.exists()  # reading never writes
    reparsed = Config.parse(config_path, config.render())
    assert reparsed.servers() == config.servers()


def test_adding_a_server_keeps_every_hand_written_line_in_order(config_path: Path):
    write(config_path, HAND_EDITED)
    with edit_config(config_path) as config:
        config.add_server(ServerConfig("prod", "db.example.com:443", "https", PEM))
    text = config_path.read_text()
    assert is_subsequence(HAND_EDITED.splitlines(), text.splitlines()), text
    lines = text.splitlines()
    # The comment that introduces [extra] still sits right above it, after the new entry.
    assert lines[lines.index("[extra]") - 1] == "# settings some other tool reads"
    assert lines.index('nickname = "prod"') < lines.index("# settings some other tool reads")
    reread = read_config(config_path)
    assert [server.nickname for server in reread.servers()] == ["local", "staging", "prod"]
    assert reread.find_server("prod").ecdsa_public_key == PEM
    assert "-----BEGIN PUBLIC KEY-----\nMFkw" in text  # the PEM stays readable in the file


def test_removing_a_server_takes_its_own_comment_and_keeps_the_rest(config_path: Path):
    write(config_path, HAND_EDITED)
    with edit_config(config_path) as config:
        config.remove_server("staging")
    text = config_path.read_text()
    assert "# the staging box" not in text and "staging.example.com" not in text
    staging_block = HAND_EDITED.split("# the staging box\n")[1].split("\n\n")[0]
    kept = HAND_EDITED.replace("# the staging box\n" + staging_block, "")
    assert is_subsequence([line for line in kept.splitlines() if line], text.splitlines()), text
    lines = text.splitlines()
    assert lines[lines.index("[extra]") - 1] == "# settings some other tool reads"


def test_removing_the_first_server_keeps_the_comments_of_the_next(config_path: Path):
    write(config_path, HAND_EDITED)
    with edit_config(config_path) as config:
        config.remove_server("local")
    text = config_path.read_text()
    lines = text.splitlines()
    assert lines[lines.index("[[server_configs]]") - 1] == "# the staging box"
    assert "# My spacetime config -- edited by hand." in lines
    config = read_config(config_path)
    assert [server.nickname for server in config.servers()] == ["staging"]
    assert config.default_server_name() is None  # it was the default


def test_removing_the_only_server_keeps_the_comment_of_the_next_table(config_path: Path):
    write(config_path, HAND_EDITED)
    with edit_config(config_path) as config:
        config.remove_server("local")
        config.remove_server("staging")
    lines = config_path.read_text().splitlines()
    assert lines[lines.index("[extra]") - 1] == "# settings some other tool reads"
    assert read_config(config_path).servers() == []


def test_unknown_keys_and_values_survive(config_path: Path):
    write(config_path, HAND_EDITED)
    with edit_config(config_path) as config:
        config.set_default_server("staging")
        config.save_token("127.0.0.1:3000", SavedToken("t", "id"))
    document = tomlkit.parse(config_path.read_text())
    assert document["extra"]["answer"] == 42
    assert document["extra"]["spacetimedb_token"] == "legacy-global-token"
    assert 'default_server = "staging" # the one I use' in config_path.read_text()


def test_setting_a_fingerprint_inserts_it_above_the_next_entrys_comment(config_path: Path):
    write(config_path, HAND_EDITED)
    with edit_config(config_path) as config:
        config.set_server_fingerprint("local", PEM)
    lines = config_path.read_text().splitlines()
    assert lines.index("ecdsa_public_key = '''-----BEGIN PUBLIC KEY-----") < lines.index("# the staging box")
    assert read_config(config_path).find_server("local").ecdsa_public_key == PEM
    with edit_config(config_path) as config:
        config.set_server_fingerprint("local", None)
    assert read_config(config_path).find_server("local").ecdsa_public_key is None


def test_tokens_are_saved_per_host_key(config_path: Path):
    with edit_config(config_path) as config:
        config.save_token("127.0.0.1:3000", SavedToken("local-token", "aa"))
        config.save_token("example.com:443", SavedToken("remote-token", "bb"))
    text = config_path.read_text()
    assert '[tokens."127.0.0.1:3000"]' in text and "[tokens]\n" not in text
    config = read_config(config_path)
    assert config.saved_token("127.0.0.1:3000") == SavedToken("local-token", "aa")
    assert config.saved_token("example.com:443") == SavedToken("remote-token", "bb")
    with edit_config(config_path) as config:
        assert config.forget_token("127.0.0.1:3000") == SavedToken("local-token", "aa")
        assert config.forget_token("127.0.0.1:3000") is None
        config.forget_token("example.com:443")
    assert "[tokens." not in config_path.read_text()


def test_a_token_follows_the_host_not_the_nickname(config_path: Path):
    with edit_config(config_path) as config:
        config.save_token("127.0.0.1:3000", SavedToken("issued-by-local", "aa"))
        # Re-point the nickname "local" at another server: its token must not go along.
        config.remove_server("local")
        config.add_server(ServerConfig("local", "10.0.0.9:3000", "http"))
        config.set_default_server("local")
    config = read_config(config_path)
    default_target = resolve_server(config, None)
    assert default_target.host_key == "10.0.0.9:3000"
    assert config.saved_token(default_target.host_key) is None
    by_url = resolve_server(config, "http://127.0.0.1:3000")
    assert config.saved_token(by_url.host_key) == SavedToken("issued-by-local", "aa")


def test_an_edit_that_raises_saves_nothing(config_path: Path):
    with edit_config(config_path) as config:
        config.add_server(ServerConfig("one", "one:1", "http"))
    before = config_path.read_text()
    with pytest.raises(RuntimeError), edit_config(config_path) as config:
        config.add_server(ServerConfig("two", "two:2", "http"))
        raise RuntimeError("changed my mind")
    assert config_path.read_text() == before
    assert not (config_path.parent / "cli.lock").exists()


def test_duplicates_are_refused(config_path: Path):
    config = read_config(config_path)
    with pytest.raises(CliError, match="nickname 'local' is already used"):
        config.add_server(ServerConfig("local", "other:1", "http"))
    with pytest.raises(CliError, match="already saved as 'local'"):
        config.add_server(ServerConfig("again", "127.0.0.1:3000", "https"))
    config.add_server(ServerConfig("web", "example.com", "https"))
    with pytest.raises(CliError, match="already saved as 'web'"):
        config.add_server(ServerConfig("web2", "EXAMPLE.com:443", "https"))


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("default_server = [", "is not valid TOML"),
        ("default_server = 3", "default_server must be a string"),
        ("server_configs = 3", "server_configs must be an array"),
        ("[[server_configs]]\nnickname = 'x'\nprotocol = 'http'\n", "server_configs[0] has no host"),
        ("[[server_configs]]\nhost = 'x'\nprotocol = 'gopher'\n", "protocol must be http or https"),
        ("[[server_configs]]\nhost = 1\nprotocol = 'http'\n", "server_configs[0].host must be a string"),
        ("[tokens.'h:1']\nidentity = 'x'\n", "has no token"),
    ],
)
def test_a_malformed_config_is_one_clear_error(config_path: Path, text: str, complaint: str):
    write(config_path, text)
    with pytest.raises(ConfigError) as raised:
        read_config(config_path)
    assert complaint in raised.value.message
    assert str(config_path) in raised.value.message
    assert "\n" not in raised.value.message.strip() or complaint == "is not valid TOML"


def test_a_new_config_file_is_private_and_an_existing_mode_is_kept(config_path: Path):
    with edit_config(config_path) as config:
        config.add_server(ServerConfig("one", "one:1", "http"))
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o600
    config_path.chmod(0o640)
    with edit_config(config_path) as config:
        config.add_server(ServerConfig("two", "two:2", "http"))
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o640


def test_saving_leaves_no_temp_files_and_cleans_up_after_crashed_writers(config_path: Path):
    with edit_config(config_path) as config:
        config.add_server(ServerConfig("one", "one:1", "http"))
    leftover = config_path.parent / ".cli.toml.12345.deadbeef.tmp"
    leftover.write_text("half a config")
    unrelated = config_path.parent / "id_ecdsa.pub"
    unrelated.write_text("key")
    with edit_config(config_path) as config:
        config.add_server(ServerConfig("two", "two:2", "http"))
    assert sorted(p.name for p in config_path.parent.iterdir()) == ["cli.toml", "id_ecdsa.pub"]


def test_a_symlinked_config_is_written_through_the_link(tmp_path: Path, config_path: Path):
    real = tmp_path / "dotfiles" / "spacetime.toml"
    write(real, HAND_EDITED)
    config_path.parent.mkdir(parents=True)
    config_path.symlink_to(real)
    with edit_config(config_path) as config:
        config.add_server(ServerConfig("prod", "db.example.com:443", "https"))
    assert config_path.is_symlink()
    assert 'nickname = "prod"' in real.read_text()


def test_save_config_writes_exactly_the_render(config_path: Path):
    config = read_config(config_path)
    config.add_server(ServerConfig("one", "one:1", "http"))
    config_path.parent.mkdir(parents=True)
    save_config(config)
    assert config_path.read_text() == config.render()
    assert not config.modified


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:3000", ("http", "127.0.0.1:3000")),
        ("https://Example.COM/", ("https", "example.com")),
        ("HTTP://localhost:3000/", ("http", "localhost:3000")),
        ("http://[::1]:3000", ("http", "[::1]:3000")),
        ("http://host:", ("http", "host")),
    ],
)
def test_server_urls_parse_to_protocol_and_host(url: str, expected: tuple[str, str]):
    assert parse_server_url(url) == expected


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("localhost:3000", "needs a protocol"),
        ("ftp://host", "protocol must be http or https"),
        ("http://host:99999", "out of range"),
        ("http://host:port", "Port could not be cast"),
        ("http://host/v1", "only protocol, host and port"),
        ("http://host?x=1", "only protocol, host and port"),
        ("http://user:pw@host", "credentials"),
        ("http://", "no host name"),
        ("http://ho st", "not a host name"),
    ],
)
def test_bad_server_urls_are_refused(url: str, complaint: str):
    with pytest.raises(CliError, match=complaint):
        parse_server_url(url)


def test_host_keys_make_the_default_port_explicit():
    assert host_key("example.com", "https") == "example.com:443"
    assert host_key("Example.com", "http") == "example.com:80"
    assert host_key("example.com:8443", "https") == "example.com:8443"
    assert host_key("[::1]", "http") == "[::1]:80"
    assert host_key("[::1]:3000", "http") == "[::1]:3000"


@pytest.mark.parametrize("nickname", ["local", "my-server_2", "A"])
def test_good_nicknames(nickname: str):
    assert validate_nickname(nickname) == nickname


@pytest.mark.parametrize("nickname", ["", "-x", "has space", "dotted.name", "host:3000", "x" * 65])
def test_bad_nicknames(nickname: str):
    with pytest.raises(CliError, match="invalid server nickname"):
        validate_nickname(nickname)


def test_server_resolution(config_path: Path):
    config = read_config(config_path)
    config.add_server(ServerConfig("web", "example.com", "https", PEM))
    assert resolve_server(config, None).url == "http://127.0.0.1:3000"
    assert resolve_server(config, "web").url == "https://example.com"
    assert resolve_server(config, "example.com").nickname == "web"
    assert resolve_server(config, "example.com:443").nickname == "web"
    by_url = resolve_server(config, "https://example.com:443")
    assert (by_url.nickname, by_url.ecdsa_public_key, by_url.host_key) == ("web", PEM, "example.com:443")
    unsaved = resolve_server(config, "http://10.1.2.3:3000")
    assert (unsaved.nickname, unsaved.is_saved, unsaved.host_key) == (None, False, "10.1.2.3:3000")
    with pytest.raises(CliError, match="no saved server named 'nope'") as raised:
        resolve_server(config, "nope")
    assert "spacetime server add" in raised.value.hint


def test_resolving_without_a_default_server_says_how_to_set_one(config_path: Path):
    write(config_path, "[[server_configs]]\nnickname = 'a'\nhost = 'a:1'\nprotocol = 'http'\n")
    with pytest.raises(CliError, match="no default server") as raised:
        resolve_server(read_config(config_path), None)
    assert "set-default" in raised.value.hint
    write(config_path, "default_server = 'gone'\n")
    with pytest.raises(CliError, match="'gone' is not a saved server"):
        resolve_server(read_config(config_path), None)


def test_reading_an_unreadable_config_is_a_config_error(config_path: Path):
    config_path.mkdir(parents=True)  # a directory where the file should be
    with pytest.raises(ConfigError, match="cannot read config file"):
        read_config(config_path)


def test_config_written_by_the_cli_is_stable_across_saves(config_path: Path):
    with edit_config(config_path) as config:
        config.add_server(ServerConfig("one", "one:1", "http"))
    first = config_path.read_text()
    with edit_config(config_path) as config:
        config.set_default_server("local")  # same value as before
    assert config_path.read_text() == first
    assert os.listdir(config_path.parent) == ["cli.toml"]
