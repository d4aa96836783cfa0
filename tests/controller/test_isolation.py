"""How a server decides at start whether modules are isolated: on this kernel (Landlock and seccomp) it says
so; on a kernel without them it warns loudly on loopback and refuses any other address unless told
``--unsafe-modules``. The "kernel without them" is real: the server runs under a seccomp filter that makes the
Landlock and seccomp system calls answer ENOSYS."""

import asyncio
import subprocess
import sys

import aiohttp
import pytest

from spacetimedb import sandbox
from spacetimedb.controller import WorkerSettings
from spacetimedb.server.isolation import IsolationRefused, decide_isolation, is_loopback
from spacetimedb.sizes import parse_size
from tests.conftest import ROOT, start_server
from tests.server.test_e2e import CHAT

pytestmark = pytest.mark.slow  # real processes or long runs: ./test.sh --fast leaves these out


WITHOUT_KERNEL_SUPPORT = ROOT / "tests" / "sandbox" / "without_kernel_support.py"
FULL = sandbox.KernelSupport(landlock_abi=7, seccomp=True, problems=())
NONE = sandbox.KernelSupport(
    landlock_abi=None, seccomp=False, problems=("no Landlock here", "no seccomp here")
)

needs_kernel = pytest.mark.skipif(
    not sandbox.probe().complete, reason=f"this kernel cannot confine workers: {sandbox.probe().problems}"
)


def test_full_support_isolates_and_says_so():
    isolation = decide_isolation("0.0.0.0", WorkerSettings(), unsafe_modules=False, support=FULL)
    assert isolation.warning is None
    assert isolation.settings.sandbox.landlock and isolation.settings.sandbox.seccomp
    assert "Landlock ABI 7" in isolation.summary and "seccomp" in isolation.summary
    assert (
        "2 GiB memory" in isolation.summary
        and "time budget 5s (loading a module 30s) + 2s grace" in isolation.summary
    )


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.53"])
def test_without_support_loopback_starts_with_a_warning(host):
    isolation = decide_isolation(host, WorkerSettings(), unsafe_modules=False, support=NONE)
    assert not isolation.settings.sandbox.landlock and not isolation.settings.sandbox.seccomp
    assert isolation.warning is not None and "NOT ISOLATED" in isolation.warning
    assert "no Landlock here" in isolation.warning


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.com"])
def test_without_support_other_addresses_are_refused_unless_unsafe(host):
    with pytest.raises(IsolationRefused, match="--unsafe-modules"):
        decide_isolation(host, WorkerSettings(), unsafe_modules=False, support=NONE)
    isolation = decide_isolation(host, WorkerSettings(), unsafe_modules=True, support=NONE)
    assert isolation.warning is not None


def test_loopback_names():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and not is_loopback("10.0.0.1")


def test_sizes():
    assert parse_size("2GiB") == 2 << 30 and parse_size("512MiB") == 512 << 20 and parse_size("4096") == 4096
    with pytest.raises(ValueError, match="size"):
        parse_size("lots")


@needs_kernel
def test_a_real_server_prints_how_modules_are_isolated(tmp_path):
    server = start_server(tmp_path / "data")
    try:
        assert server.process.stdout is not None
        lines = [server.process.stdout.readline() for _ in range(3)]
        (summary,) = [line for line in lines if "module sandbox" in line]
        assert "Landlock ABI" in summary and "seccomp" in summary
    finally:
        server.stop()


def _without_support(args: list[str]) -> subprocess.Popen[str]:
    command = [sys.executable, str(WITHOUT_KERNEL_SUPPORT), sys.executable, "-m", "spacetimedb.server", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


@needs_kernel
def test_on_a_kernel_without_support_a_non_loopback_server_refuses_to_start(tmp_path):
    process = _without_support(["--listen-addr", "0.0.0.0:0", "--data-dir", str(tmp_path / "data")])
    out, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "refusing to listen on 0.0.0.0" in err and "--unsafe-modules" in err
    assert "listening on" not in out
    assert not (tmp_path / "data" / "databases").exists() or not any(
        (tmp_path / "data" / "databases").iterdir()
    )


@needs_kernel
def test_on_a_kernel_without_support_a_loopback_server_warns_and_serves(tmp_path):
    process = _without_support(["--listen-addr", "127.0.0.1:0", "--data-dir", str(tmp_path / "data")])
    try:
        assert process.stdout is not None and process.stderr is not None
        url = None
        for _ in range(20):
            line = process.stdout.readline()
            if line.startswith("listening on "):
                url = line.split()[-1]
                break
        assert url is not None, process.stderr.read()
        assert "no Landlock, no seccomp" in "".join(process.stdout.readline() for _ in range(3))
        warning = process.stderr.readline()
        assert "MODULES ARE NOT ISOLATED" in warning and "Landlock" in warning

        async def publish_and_call() -> None:
            async with aiohttp.ClientSession() as http:
                response = await http.put(f"{url}/v1/database/chat", data=CHAT)
                assert response.status == 200, await response.text()
                response = await http.post(
                    f"{url}/v1/database/chat/call/send_message", json=["unconfined but working"]
                )
                assert response.status == 200, await response.text()

        asyncio.run(publish_and_call())
    finally:
        process.terminate()
        process.communicate(timeout=30)


def test_cli_start_offers_the_options():
    """``spacetime start`` builds its options with the same function as ``python -m spacetimedb.server``."""
    result = subprocess.run(
        [sys.executable, "-m", "spacetimedb.cli.main", "start", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0
    for option in ("--unsafe-modules", "--publishers", "--module-memory", "--reducer-budget", "--hard-grace"):
        assert option in result.stdout
