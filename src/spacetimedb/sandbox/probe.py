"""What the running kernel offers the sandbox, found out without changing anything about the caller."""

from __future__ import annotations

import ctypes
import errno
import platform
from dataclasses import dataclass

from .kernel import error_name, syscall
from .landlock import landlock_abi
from .seccomp import SECCOMP_GET_ACTION_AVAIL, SECCOMP_RET_ERRNO, SECCOMP_RET_KILL_PROCESS
from .syscalls import native_architecture

_LANDLOCK_HINTS = {
    errno.ENOSYS: "the kernel was built without Landlock (CONFIG_SECURITY_LANDLOCK) or a filter hides it",
    errno.EOPNOTSUPP: "Landlock is built in but not enabled at boot (add it to the lsm= kernel parameter)",
}
_SECCOMP_HINTS = {
    errno.ENOSYS: "the kernel was built without CONFIG_SECCOMP_FILTER or a filter hides it",
    errno.EOPNOTSUPP: "the kernel does not know this action (SECCOMP_RET_KILL_PROCESS needs Linux 4.14)",
}


@dataclass(frozen=True)
class KernelSupport:
    """What ``probe`` found: the Landlock ABI (None when Landlock is unavailable), whether seccomp filtering
    with the actions we use is available, and a sentence for each thing missing (empty when nothing is)."""

    landlock_abi: int | None
    seccomp: bool
    problems: tuple[str, ...]

    @property
    def complete(self) -> bool:
        """Whether every confinement the sandbox offers can be applied here."""
        return self.landlock_abi is not None and self.seccomp and native_architecture() is not None


def _with_hint(message: str, code: int | None, hints: dict[int, str]) -> str:
    hint = hints.get(code) if code is not None else None
    return f"{message} {error_name(code)}" + (f": {hint}" if hint else "")


def _probe_landlock() -> tuple[int | None, str | None]:
    try:
        return landlock_abi(), None
    except OSError as error:
        return None, _with_hint(
            "Landlock is unavailable: landlock_create_ruleset failed with", error.errno, _LANDLOCK_HINTS
        )


def _probe_seccomp(seccomp_number: int) -> str | None:
    for name, action in (
        ("SECCOMP_RET_ERRNO", SECCOMP_RET_ERRNO),
        ("SECCOMP_RET_KILL_PROCESS", SECCOMP_RET_KILL_PROCESS),
    ):
        value = ctypes.c_uint32(action)
        try:
            syscall(seccomp_number, SECCOMP_GET_ACTION_AVAIL, 0, ctypes.pointer(value))
        except OSError as error:
            return _with_hint(
                f"seccomp is unavailable: seccomp(SECCOMP_GET_ACTION_AVAIL, {name}) failed with",
                error.errno,
                _SECCOMP_HINTS,
            )
    return None


def probe() -> KernelSupport:
    """Find out which confinements this kernel supports, without applying any (safe to call in the server).

    Landlock: asks ``landlock_create_ruleset`` for its ABI version. seccomp: asks whether the ERRNO and
    KILL_PROCESS actions are available. Anything but Linux on x86_64 or aarch64 is reported as unsupported.
    """
    system = platform.system()
    if system != "Linux":
        return KernelSupport(
            None, False, (f"the sandbox needs Linux, and this is {system or 'an unknown system'}",)
        )
    architecture = native_architecture()
    if architecture is None:
        machine = platform.machine() or "an unknown machine"
        bits = ctypes.sizeof(ctypes.c_void_p) * 8
        return KernelSupport(
            None,
            False,
            (
                f"the sandbox supports 64-bit Python on x86_64 and aarch64 only, "
                f"and this is {bits}-bit Python on {machine}",
            ),
        )
    abi, landlock_problem = _probe_landlock()
    seccomp_problem = _probe_seccomp(architecture.number("seccomp"))
    problems = tuple(problem for problem in (landlock_problem, seccomp_problem) if problem is not None)
    return KernelSupport(abi, seccomp_problem is None, problems)
