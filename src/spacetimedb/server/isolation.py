"""Deciding at start how modules will be isolated, and saying so.

Modules are untrusted: anyone may publish one. Each database's worker confines itself with Landlock and seccomp
(``spacetimedb.sandbox``); where the kernel lacks either (or off Linux), a server on a loopback address starts
with a loud warning that modules are not isolated, and a server on any other address refuses to start unless
the operator accepts that with ``--unsafe-modules``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace

from spacetimedb import sandbox
from spacetimedb.controller import SandboxSettings, WorkerSettings
from spacetimedb.sizes import format_size


class IsolationRefused(Exception):
    """The server would expose unisolated modules beyond this machine; ``str()`` says why and what to do."""


@dataclass(frozen=True)
class Isolation:
    settings: WorkerSettings
    summary: str  # one line for the start-up banner
    warning: str | None  # printed loudly when modules are not isolated


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def decide_isolation(
    listen_host: str,
    settings: WorkerSettings,
    unsafe_modules: bool,
    support: sandbox.KernelSupport | None = None,
) -> Isolation:
    """The worker settings to run with, given what the kernel supports; raises ``IsolationRefused``."""
    support = support if support is not None else sandbox.probe()
    wanted = settings.sandbox
    landlock = wanted.landlock and support.landlock_abi is not None
    seccomp = wanted.seccomp and support.seccomp
    missing = [sentence for sentence in support.problems]
    if wanted.landlock and not landlock and not missing:
        missing.append("Landlock is not available")
    if not wanted.landlock:
        missing.append("Landlock was turned off")
    if not wanted.seccomp:
        missing.append("seccomp was turned off")
    effective = replace(settings, sandbox=replace(wanted, landlock=landlock, seccomp=seccomp))
    summary = _summary(effective, support)
    if landlock and seccomp:
        return Isolation(effective, summary, None)
    problem = "; ".join(missing) or "the kernel cannot confine workers"
    if not is_loopback(listen_host) and not unsafe_modules:
        raise IsolationRefused(
            f"refusing to listen on {listen_host}: modules would not be isolated from the server or from each "
            f"other ({problem}); anyone who can reach this address may publish a module. Listen on a loopback "
            "address, or pass --unsafe-modules to accept the risk"
        )
    warning = (
        "WARNING: MODULES ARE NOT ISOLATED. A published module can read this server's keys and other "
        f"databases, and take the server down ({problem})."
    )
    return Isolation(effective, summary, warning)


def _summary(settings: WorkerSettings, support: sandbox.KernelSupport) -> str:
    box: SandboxSettings = settings.sandbox
    parts = [
        f"Landlock ABI {support.landlock_abi}" if box.landlock else "no Landlock",
        "seccomp" if box.seccomp else "no seccomp",
        f"{format_size(box.memory_bytes)} memory" if box.memory_bytes else "no memory limit",
        f"{box.max_open_files} open files",
        f"time budget {settings.reducer_budget_seconds:g}s (loading a module {settings.load_budget_seconds:g}s)"
        f" + {settings.hard_grace_seconds:g}s grace",
    ]
    return "module sandbox (one worker process per database): " + ", ".join(parts)
