"""Resource limits, no_new_privs and capabilities: the confinement that needs no LSM and no filter."""

from __future__ import annotations

import ctypes
import errno
from pathlib import Path

from .errors import SandboxError
from .kernel import (
    PR_CAP_AMBIENT,
    PR_CAP_AMBIENT_CLEAR_ALL,
    PR_CAPBSET_DROP,
    ensure_no_new_privs,
    error_name,
    prctl,
    require_single_thread,
    syscall,
)
from .policy import SandboxPolicy
from .syscalls import native_architecture

_CAP_LAST_CAP = Path("/proc/sys/kernel/cap_last_cap")
# CAP_CHECKPOINT_RESTORE, the last capability as of Linux 5.9; used when /proc cannot tell us.
_FALLBACK_LAST_CAP = 40
# <linux/capability.h>: version 3 takes two 32-bit words per set (64 capabilities).
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _lower_limit(which: int, name: str, value: int) -> None:
    """Set both the soft and the hard limit to ``value``, or to the hard limit if that is already lower: a
    limit is a ceiling, and raising a hard limit needs a capability we are about to give up."""
    import resource

    _, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY and hard < value:
        value = hard
    try:
        resource.setrlimit(which, (value, value))
    except (OSError, ValueError) as error:
        raise SandboxError(f"could not set {name} to {value}: {error}") from error


def _last_capability() -> int:
    try:
        return int(_CAP_LAST_CAP.read_text().strip())
    except (OSError, ValueError):
        return _FALLBACK_LAST_CAP


def drop_capabilities() -> None:
    """Empty the bounding and ambient sets, then the effective, permitted and inheritable ones.

    The bounding set goes first: dropping from it needs CAP_SETPCAP, which the last step gives up. A process
    without CAP_SETPCAP (not root) cannot shrink its bounding set; that is harmless once no_new_privs is set,
    because then no execve grants a capability (not even to uid 0).
    """
    for capability in range(_last_capability() + 1):
        try:
            prctl(PR_CAPBSET_DROP, capability)
        except OSError as error:
            if error.errno == errno.EINVAL:  # a capability this kernel does not know
                continue
            if error.errno == errno.EPERM:  # no CAP_SETPCAP: see the docstring
                break
            raise SandboxError(
                f"could not drop capability {capability} from the bounding set: {error_name(error.errno)}"
            ) from error
    try:
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    except OSError as error:
        # EINVAL: a kernel before ambient capabilities (4.3) has none to clear
        if error.errno != errno.EINVAL:
            raise SandboxError(
                f"could not clear the ambient capabilities: {error_name(error.errno)}"
            ) from error
    architecture = native_architecture()
    if architecture is None:
        raise SandboxError("capabilities: this platform is not Linux on x86_64 or aarch64")
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    empty_sets = (_CapData * 2)()
    try:
        syscall(architecture.number("capset"), ctypes.pointer(header), empty_sets)
    except OSError as error:
        raise SandboxError(
            f"could not clear the capability sets: capset failed with {error_name(error.errno)}"
        ) from error


def limit_memory(memory_bytes: int, address_space: bool = True) -> None:
    """Cap this process's memory at ``memory_bytes``, soft and hard alike (irreversible).

    ``address_space`` caps everything mapped (RLIMIT_AS), the tightest cap and the one for a process that runs
    arbitrary Python. V8 cannot start under it: it reserves a terabyte of address space for its own sandbox
    (inaccessible, never backed). A process whose only untrusted code is JS in V8 caps its data instead
    (RLIMIT_DATA: the heap and every private writable mapping, which is where V8 puts every object and
    buffer; JS has no way to make a shared or file mapping).
    """
    import resource

    if memory_bytes <= 0:
        raise ValueError(f"memory_bytes must be positive, not {memory_bytes}")
    if address_space:
        _lower_limit(resource.RLIMIT_AS, "RLIMIT_AS", memory_bytes)
    else:
        _lower_limit(resource.RLIMIT_DATA, "RLIMIT_DATA", memory_bytes)


def apply_process_limits(policy: SandboxPolicy) -> None:
    """Apply the policy's resource limits, set no_new_privs and drop every capability.

    Limits: RLIMIT_AS = ``memory_bytes`` (unless None), RLIMIT_CORE = 0 (no core dumps of a database's
    memory), RLIMIT_NOFILE = ``max_open_files``; soft and hard alike, so the worker cannot raise them again.
    A hard limit already lower than asked is kept. Raises SandboxError when a step fails or the process has
    other threads (capabilities belong to each thread, so only the calling thread would lose them).
    """
    import resource  # not at the top: Windows has no such module, and the package must import there (probe)

    require_single_thread("capabilities", "capabilities are dropped only for the thread that drops them")
    if policy.memory_bytes is not None:
        _lower_limit(resource.RLIMIT_AS, "RLIMIT_AS", policy.memory_bytes)
    _lower_limit(resource.RLIMIT_CORE, "RLIMIT_CORE", 0)
    _lower_limit(resource.RLIMIT_NOFILE, "RLIMIT_NOFILE", policy.max_open_files)
    ensure_no_new_privs()
    drop_capabilities()
