"""Syscall numbers and audit architecture codes for the architectures the sandbox supports (x86_64, aarch64).

The one place that knows numbers: every other module asks ``native_architecture()`` for the table of the
machine it runs on. A table lists only the syscalls that exist on its architecture (aarch64 has no ``fork``,
``vfork``, ``mknod``, ``iopl``...), so a deny list built from it never names a syscall the kernel lacks.
"""

from __future__ import annotations

import ctypes
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

# <linux/audit.h>: EM_X86_64 and EM_AARCH64 with __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE
AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_AARCH64 = 0xC00000B7

# Syscalls added since 5.1 (number 424 on) share one number on every architecture.
_UNIFIED_NUMBERS: dict[str, int] = {
    "pidfd_send_signal": 424,
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "pidfd_open": 434,
    "clone3": 435,
    "pidfd_getfd": 438,
    "process_madvise": 440,
    "mount_setattr": 442,
    "quotactl_fd": 443,
    "landlock_create_ruleset": 444,
    "landlock_add_rule": 445,
    "landlock_restrict_self": 446,
    "process_mrelease": 448,
    "open_tree_attr": 467,
}

# From arch/x86/entry/syscalls/syscall_64.tbl (the "common" and "64" entries).
_X86_64_NUMBERS: dict[str, int] = {
    "ioctl": 16,
    "getpid": 39,
    "socket": 41,
    "socketpair": 53,
    "clone": 56,
    "fork": 57,
    "vfork": 58,
    "execve": 59,
    "kill": 62,
    "ptrace": 101,
    "syslog": 103,
    "setuid": 105,
    "setgid": 106,
    "setreuid": 113,
    "setregid": 114,
    "setgroups": 116,
    "setresuid": 117,
    "setresgid": 119,
    "setfsuid": 122,
    "setfsgid": 123,
    "capget": 125,
    "capset": 126,
    "rt_sigqueueinfo": 129,
    "mknod": 133,
    "uselib": 134,
    "personality": 135,
    "vhangup": 153,
    "modify_ldt": 154,
    "pivot_root": 155,
    "prctl": 157,
    "adjtimex": 159,
    "chroot": 161,
    "acct": 163,
    "settimeofday": 164,
    "mount": 165,
    "umount2": 166,
    "swapon": 167,
    "swapoff": 168,
    "reboot": 169,
    "sethostname": 170,
    "setdomainname": 171,
    "iopl": 172,
    "ioperm": 173,
    "init_module": 175,
    "delete_module": 176,
    "quotactl": 179,
    "tkill": 200,
    "clock_settime": 227,
    "tgkill": 234,
    "kexec_load": 246,
    "add_key": 248,
    "request_key": 249,
    "keyctl": 250,
    "mknodat": 259,
    "unshare": 272,
    "rt_tgsigqueueinfo": 297,
    "perf_event_open": 298,
    "fanotify_init": 300,
    "name_to_handle_at": 303,
    "open_by_handle_at": 304,
    "clock_adjtime": 305,
    "setns": 308,
    "process_vm_readv": 310,
    "process_vm_writev": 311,
    "kcmp": 312,
    "finit_module": 313,
    "seccomp": 317,
    "kexec_file_load": 320,
    "bpf": 321,
    "execveat": 322,
    "userfaultfd": 323,
    **_UNIFIED_NUMBERS,
}

# From include/uapi/asm-generic/unistd.h, which arm64 uses (64-bit, no legacy syscalls).
_AARCH64_NUMBERS: dict[str, int] = {
    "ioctl": 29,
    "mknodat": 33,
    "umount2": 39,
    "mount": 40,
    "pivot_root": 41,
    "chroot": 51,
    "vhangup": 58,
    "quotactl": 60,
    "acct": 89,
    "capget": 90,
    "capset": 91,
    "personality": 92,
    "unshare": 97,
    "kexec_load": 104,
    "init_module": 105,
    "delete_module": 106,
    "clock_settime": 112,
    "syslog": 116,
    "ptrace": 117,
    "kill": 129,
    "tkill": 130,
    "tgkill": 131,
    "rt_sigqueueinfo": 138,
    "reboot": 142,
    "setregid": 143,
    "setgid": 144,
    "setreuid": 145,
    "setuid": 146,
    "setresuid": 147,
    "setresgid": 149,
    "setfsuid": 151,
    "setfsgid": 152,
    "setgroups": 159,
    "sethostname": 161,
    "setdomainname": 162,
    "prctl": 167,
    "settimeofday": 170,
    "adjtimex": 171,
    "getpid": 172,
    "socket": 198,
    "socketpair": 199,
    "add_key": 217,
    "request_key": 218,
    "keyctl": 219,
    "clone": 220,
    "execve": 221,
    "swapon": 224,
    "swapoff": 225,
    "rt_tgsigqueueinfo": 240,
    "perf_event_open": 241,
    "fanotify_init": 262,
    "name_to_handle_at": 264,
    "open_by_handle_at": 265,
    "clock_adjtime": 266,
    "setns": 268,
    "process_vm_readv": 270,
    "process_vm_writev": 271,
    "kcmp": 272,
    "finit_module": 273,
    "seccomp": 277,
    "bpf": 280,
    "execveat": 281,
    "userfaultfd": 282,
    "kexec_file_load": 294,
    **_UNIFIED_NUMBERS,
}


@dataclass(frozen=True)
class Architecture:
    """One supported architecture: its name, its seccomp audit code and its syscall numbers."""

    name: str
    audit_arch: int
    numbers: Mapping[str, int]
    # x86_64 kernels also accept x32 syscalls (numbers with this bit set) under the same audit arch,
    # so a filter must refuse them explicitly or they slip past every number it checks.
    x32_syscall_bit: int | None = None

    def number(self, name: str) -> int:
        """The number of syscall ``name`` (KeyError when this architecture has no such syscall)."""
        return self.numbers[name]

    def has(self, name: str) -> bool:
        """Whether this architecture has syscall ``name``."""
        return name in self.numbers


X86_64 = Architecture(
    "x86_64", AUDIT_ARCH_X86_64, MappingProxyType(_X86_64_NUMBERS), x32_syscall_bit=0x40000000
)
AARCH64 = Architecture("aarch64", AUDIT_ARCH_AARCH64, MappingProxyType(_AARCH64_NUMBERS))

_BY_MACHINE: dict[str, Architecture] = {
    "x86_64": X86_64,
    "amd64": X86_64,
    "aarch64": AARCH64,
    "arm64": AARCH64,
}


def native_architecture() -> Architecture | None:
    """The table for the machine this interpreter runs on, or None when it is not a supported one.

    A 32-bit interpreter on a 64-bit kernel uses the compat syscall table, so it counts as unsupported.
    """
    if platform.system() != "Linux" or ctypes.sizeof(ctypes.c_void_p) != 8:
        return None
    return _BY_MACHINE.get(platform.machine().lower())
