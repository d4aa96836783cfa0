"""The sandbox a database's worker process puts itself in before it touches untrusted module code.

Owns process confinement on Linux (x86_64, aarch64), done with ctypes and raw syscalls: resource limits,
no_new_privs and dropping every capability (``apply_process_limits``; ``limit_memory`` for a memory cap applied
later, once a worker knows whether V8 runs in it), Landlock file-system, TCP and scope
rules (``restrict_filesystem``), two stacked seccomp filters (``restrict_syscalls``, then
``forbid_new_threads``), and ``probe`` to learn, without side effects, what the kernel supports. ``confine``
applies a ``SandboxPolicy`` in the right order.

Every step is irreversible, so only a worker calls them, on itself, never the server. Imports nothing else
from ``spacetimedb`` (any layer may use it).

Modules: ``syscalls`` (syscall numbers and audit arches, the only place that knows them), ``kernel``
(ctypes syscall and prctl), ``policy``, ``limits``, ``landlock``, ``seccomp`` (a small BPF assembler and
both filters), ``probe``, ``errors``.
"""

from __future__ import annotations

from .errors import SandboxError
from .landlock import restrict_filesystem
from .limits import apply_process_limits, limit_memory
from .policy import SandboxPolicy, default_readable_paths
from .probe import KernelSupport, probe
from .seccomp import forbid_new_threads, restrict_syscalls

__all__ = [
    "KernelSupport",
    "SandboxError",
    "SandboxPolicy",
    "apply_process_limits",
    "confine",
    "default_readable_paths",
    "forbid_new_threads",
    "limit_memory",
    "probe",
    "restrict_filesystem",
    "restrict_syscalls",
]


def confine(policy: SandboxPolicy) -> int | None:
    """Apply ``policy`` to this process: limits, no_new_privs and capabilities first, then Landlock (if
    ``policy.landlock``), then the stage-1 seccomp filter (if ``policy.seccomp``).

    The limits come first because dropping capabilities needs capset, which the seccomp filter refuses, and
    the filter comes last so that no step before it meets a refusal. Returns the Landlock ABI used, or None
    when Landlock was not asked for. Raises SandboxError at the first step that cannot be applied (the process
    must then not run untrusted code: it may be partly confined).
    """
    apply_process_limits(policy)
    abi = restrict_filesystem(policy) if policy.landlock else None
    if policy.seccomp:
        restrict_syscalls()
    return abi
