"""The server's config file: keys from the tunables table, flags over the file, unknown keys named, the example
complete; and the server's own log level and JSON format."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from pathlib import Path

import pytest

from spacetimedb.server import config as server_config
from spacetimedb.server.config import ConfigError, read_config, resolve
from spacetimedb.server.tunables import SECONDS, TEXT, TUNABLES, Tunable, server_options
from tests.cli_e2e.conftest import User, assert_one_line_error
from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # real processes or long runs: ./test.sh --fast leaves these out


EXAMPLE = ROOT / "config.example.toml"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_flags_beat_the_file(tmp_path):
    config = write(
        tmp_path / "server.toml",
        'listen-addr = "0.0.0.0:4000"\nreducer-budget = 2\nmax-connections = 77\nmodule-memory = "1GiB"\n'
        'cors-origins = ["https://a.example", "https://b.example"]\nunsafe-modules = true\n',
    )
    flags = {"listen_addr": None, "data_dir": tmp_path, "in_memory": False, "reducer_budget": "3"}
    settings = resolve(flags, config)
    assert settings.listen_addr == "0.0.0.0:4000" and settings.data_dir == tmp_path
    assert settings.tunables["reducer_budget"] == "3"  # the flag
    options = server_options(settings.tunables)
    assert options.workers.reducer_budget_seconds == 3
    assert options.connections.max_connections == 77  # the file
    assert options.workers.sandbox.memory_bytes == 1 << 30
    assert options.unsafe_modules is True
    assert options.cors.origins == {"https://a.example", "https://b.example"}
    flags["listen_addr"] = "127.0.0.1:5000"
    assert resolve(flags, config).listen_addr == "127.0.0.1:5000"


def test_config_toml_in_the_data_directory_is_read_unless_another_is_given(tmp_path):
    write(tmp_path / "config.toml", "max-connections = 66\n")
    flags = {"data_dir": tmp_path}
    assert resolve(flags, None).tunables == {"max_connections": 66}
    other = write(tmp_path / "other.toml", "max-connections = 55\n")
    assert resolve(flags, other).tunables == {"max_connections": 55}
    assert resolve({"data_dir": tmp_path / "nowhere"}, None).config_file is None


def test_unknown_keys_are_an_error_that_names_them(tmp_path):
    config = write(
        tmp_path / "c.toml", "reducer_budget = 1\nmax-conections = 3\nhard-grace = 1\ncolour = 1\n"
    )
    with pytest.raises(ConfigError) as error:
        read_config(config)
    message = str(error.value)
    assert str(config) in message
    assert "`reducer_budget` (did you mean `reducer-budget`?)" in message
    assert "`max-conections` (did you mean `max-connections`?)" in message
    assert "`colour`" in message and "hard-grace" not in message


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ('reducer-budget = "soon"', "`reducer-budget` --reducer-budget: expected seconds"),
        ("reducer-budget = [1, 2]", "`reducer-budget` must be a list of strings"),
        ('max-connections = ["1"]', "`max-connections` takes one value"),
        ('unsafe-modules = "yes"', "`unsafe-modules` must be a TOML boolean"),
        ("listen-addr = 3000", "`listen-addr` must be a TOML string"),
        ("[limits]\nreducer-budget = 1", "unknown keys: `limits`"),
        ("reducer-budget = ", "is not valid TOML"),
    ],
)
def test_bad_values_are_named(tmp_path, text, complaint):
    with pytest.raises(ConfigError, match=re.escape(complaint)):
        read_config(write(tmp_path / "c.toml", text + "\n"))


def test_a_repeatable_tunable_takes_a_list(tmp_path, monkeypatch):
    """Tunables added to the table later are keys at once; a repeatable one (``--oidc-issuer``) takes a list."""
    issuer = Tunable(
        "--oidc-issuer", TEXT, (), "An OpenID issuer whose tokens are accepted.", repeatable=True
    )
    timeout = Tunable("--pg-timeout", SECONDS, 1.0, "A made-up tunable.")
    monkeypatch.setattr(server_config, "TUNABLES", (*TUNABLES, issuer, timeout))
    values = read_config(
        write(
            tmp_path / "c.toml", 'oidc-issuer = ["https://a.example", "https://b.example"]\npg-timeout = 2\n'
        )
    )
    assert values == {"oidc_issuer": ["https://a.example", "https://b.example"], "pg_timeout": 2}
    assert read_config(write(tmp_path / "d.toml", 'oidc-issuer = "https://a.example"\n')) == {
        "oidc_issuer": ["https://a.example"]
    }
    assert "# oidc-issuer = []" in server_config.example_config()


def test_the_example_config_lists_every_key_and_is_current(tmp_path):
    text = EXAMPLE.read_text()
    assert text == server_config.example_config(), (
        "config.example.toml is stale: regenerate it with `python -m spacetimedb.server.config > config.example.toml`"
    )
    keys = set(re.findall(r"^# ([a-z][a-z-]*) = ", text, re.MULTILINE))
    assert keys == {t.flag.removeprefix("--") for t in TUNABLES} | set(server_config.START_KEYS)
    # uncommented, the lines that show a default value make a valid config file
    defaults = [line[2:] for line in text.splitlines() if re.match(r"^# [a-z-]+ = [^<]", line)]
    values = read_config(write(tmp_path / "defaults.toml", "\n".join(defaults) + "\n"))
    assert values["reducer_budget"] == 5 and values["listen_addr"] == "127.0.0.1:3000"
    server_options({name: value for name, value in values.items() if name in {t.name for t in TUNABLES}})


def _start(user: User, *args: str) -> tuple[subprocess.Popen[str], list[str]]:
    """``spacetime start ARGS``; its stdout up to the connection limits line."""
    process = user.start("start", *args, server=False)
    assert process.stdout is not None
    lines: list[str] = []
    for _ in range(20):
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith("connections:"):
            break
    return process, lines


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    return err


def test_spacetime_start_with_a_config_file(tmp_path):
    user = User(tmp_path / "cfg", "http://127.0.0.1:1")
    config = write(
        tmp_path / "server.toml",
        'listen-addr = "127.0.0.1:0"\nmax-connections = 77\nlog-level = "info"\nlog-format = "json"\n',
    )
    data = tmp_path / "data"
    process, lines = _start(user, "--config", str(config), "--data-dir", str(data), "--max-connections", "55")
    err = _stop(process)
    assert lines[0].startswith("listening on http://127.0.0.1:"), lines
    assert lines[-1].startswith("connections: at most 55,"), lines  # the flag beat the file's 77
    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(r["level"] == "info" and r["message"].startswith("listening on") for r in records), err
    assert {"time", "level", "logger", "message"} <= set(records[0])

    write(data / "config.toml", 'listen-addr = "127.0.0.1:0"\nmax-connections = 66\n')
    process, lines = _start(user, "--data-dir", str(data))
    err = _stop(process)
    assert lines[-1].startswith("connections: at most 66,"), lines
    assert "listening on" not in err  # the default level, warning, does not log the start

    write(data / "config.toml", 'listen-addr = "127.0.0.1:0"\nmax-conections = 66\n')
    result = user("start", "--data-dir", str(data), server=False)
    message = assert_one_line_error(result, "unknown keys")
    assert "`max-conections` (did you mean `max-connections`?)" in message
