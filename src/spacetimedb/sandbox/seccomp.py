"""Syscall filtering with seccomp: a small classic-BPF assembler and the two filters workers install.

Stage 1 (``restrict_syscalls``) refuses what a worker never needs and what could reach outside it: new
sockets, new processes and programs, debugging or signalling other processes, mounts and namespaces,
identity changes, kernel modules, keyrings, io_uring, ... Threads stay allowed. Stage 2
(``forbid_new_threads``), stacked on top, refuses creating threads too. Both are installed with TSYNC so every
existing thread gets them; a filter can never be removed, only added to.

Refused syscalls fail with EPERM (so Python raises PermissionError) rather than killing the process; only a
syscall made under a foreign ABI (i386 ``int 0x80`` on x86_64) kills it, since its numbers mean different
syscalls and nothing below can judge them.
"""

from __future__ import annotations

import ctypes
import errno
import os
from dataclasses import dataclass

from .errors import SandboxError
from .kernel import ensure_no_new_privs, error_name, syscall
from .syscalls import Architecture, native_architecture

# <linux/seccomp.h>
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_GET_ACTION_AVAIL = 2
SECCOMP_FILTER_FLAG_TSYNC = 1 << 0

SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_DATA = 0x0000FFFF

# struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6] (little-endian on both arches)
SECCOMP_DATA_NR = 0
SECCOMP_DATA_ARCH = 4
SECCOMP_DATA_ARGS = 16

# <linux/filter.h> classic BPF opcodes (class | size | mode, class | op | source)
BPF_LD_W_ABS = 0x00 | 0x00 | 0x20
BPF_JMP_JEQ_K = 0x05 | 0x10 | 0x00
BPF_JMP_JSET_K = 0x05 | 0x40 | 0x00
BPF_RET_K = 0x06 | 0x00
BPF_MAXINSNS = 4096

# <linux/sched.h>
CLONE_THREAD = 0x00010000
# Every CLONE_NEW* bit clone(2) takes (CLONE_NEWTIME, 0x80, only works with clone3 and unshare: in clone's
# flags that bit is part of the exit signal).
CLONE_NEW_NAMESPACES = (
    0x00020000  # CLONE_NEWNS
    | 0x02000000  # CLONE_NEWCGROUP
    | 0x04000000  # CLONE_NEWUTS
    | 0x08000000  # CLONE_NEWIPC
    | 0x10000000  # CLONE_NEWUSER
    | 0x20000000  # CLONE_NEWPID
    | 0x40000000  # CLONE_NEWNET
)

# Terminal ioctls that push input into, or act on, a terminal the worker may share with whoever started it.
TIOCSTI = 0x5412
TIOCLINUX = 0x541C

# Refused with EPERM in stage 1, where the architecture has them.
DENIED_SYSCALLS: tuple[str, ...] = (
    # new sockets (inherited ones keep working), new programs and processes
    "socket",
    "socketpair",
    "execve",
    "execveat",
    "fork",
    "vfork",
    # reaching into, or signalling, other processes
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "process_madvise",
    "process_mrelease",
    "pidfd_open",
    "pidfd_getfd",
    "pidfd_send_signal",
    "kcmp",
    "tkill",
    "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
    # mounts, namespaces, root directory
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "move_mount",
    "open_tree",
    "open_tree_attr",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "unshare",
    "setns",
    # identity and capabilities
    "setuid",
    "setgid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setfsuid",
    "setfsgid",
    "setgroups",
    "capset",
    # the kernel itself
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",
    "open_by_handle_at",
    "name_to_handle_at",
    "fanotify_init",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "quotactl",
    "quotactl_fd",
    "syslog",
    "vhangup",
    "iopl",
    "ioperm",
    "modify_ldt",
    "uselib",
    "personality",
    # the machine's name and clock
    "sethostname",
    "setdomainname",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    # device nodes
    "mknod",
    "mknodat",
)


def errno_action(code: int) -> int:
    """The seccomp action that fails the syscall with errno ``code``."""
    return SECCOMP_RET_ERRNO | (code & SECCOMP_RET_DATA)


class _SockFilter(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    ]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


@dataclass(frozen=True)
class Instruction:
    """One assembled classic-BPF instruction (``struct sock_filter``)."""

    code: int
    jump_true: int
    jump_false: int
    k: int


@dataclass(frozen=True)
class _Pending:
    code: int
    k: int
    then: str | None = None
    otherwise: str | None = None


class FilterBuilder:
    """A classic-BPF seccomp program written with named labels instead of jump offsets.

    Conditional jumps name their targets (None means the next instruction); ``build`` turns the names into the
    forward offsets BPF wants and refuses backward jumps, jumps beyond 255 instructions and unknown labels::

        program = FilterBuilder()
        program.load_syscall_number()
        program.jump_if_equal(39, then="deny")
        program.return_action(SECCOMP_RET_ALLOW)
        program.label("deny")
        program.return_action(errno_action(errno.EPERM))
    """

    def __init__(self) -> None:
        self._pending: list[_Pending] = []
        self._labels: dict[str, int] = {}

    def label(self, name: str) -> None:
        """Name the position of the next instruction."""
        if name in self._labels:
            raise ValueError(f"label {name!r} is defined twice")
        self._labels[name] = len(self._pending)

    def load_syscall_number(self) -> None:
        self._pending.append(_Pending(BPF_LD_W_ABS, SECCOMP_DATA_NR))

    def load_architecture(self) -> None:
        self._pending.append(_Pending(BPF_LD_W_ABS, SECCOMP_DATA_ARCH))

    def load_argument_low(self, index: int) -> None:
        """Load the low 32 bits of syscall argument ``index`` (0-5)."""
        self._pending.append(_Pending(BPF_LD_W_ABS, self._argument_offset(index)))

    def load_argument_high(self, index: int) -> None:
        """Load the high 32 bits of syscall argument ``index`` (0-5)."""
        self._pending.append(_Pending(BPF_LD_W_ABS, self._argument_offset(index) + 4))

    def jump_if_equal(self, value: int, then: str | None = None, otherwise: str | None = None) -> None:
        """Go to ``then`` if the loaded word equals ``value``, else to ``otherwise``."""
        self._pending.append(_Pending(BPF_JMP_JEQ_K, value, then, otherwise))

    def jump_if_any_bit(self, mask: int, then: str | None = None, otherwise: str | None = None) -> None:
        """Go to ``then`` if the loaded word has any bit of ``mask`` set, else to ``otherwise``."""
        self._pending.append(_Pending(BPF_JMP_JSET_K, mask, then, otherwise))

    def return_action(self, action: int) -> None:
        """End the program with seccomp ``action`` (e.g. SECCOMP_RET_ALLOW, ``errno_action(EPERM)``)."""
        self._pending.append(_Pending(BPF_RET_K, action))

    def build(self) -> tuple[Instruction, ...]:
        """The program with every label resolved to a forward offset."""
        if not self._pending or self._pending[-1].code != BPF_RET_K:
            raise ValueError("a seccomp program must end with a return")
        if len(self._pending) > BPF_MAXINSNS:
            raise ValueError(f"the program has {len(self._pending)} instructions, more than {BPF_MAXINSNS}")
        built = []
        for position, pending in enumerate(self._pending):
            built.append(
                Instruction(
                    pending.code,
                    self._offset(position, pending.then),
                    self._offset(position, pending.otherwise),
                    pending.k & 0xFFFFFFFF,
                )
            )
        return tuple(built)

    @staticmethod
    def _argument_offset(index: int) -> int:
        if not 0 <= index < 6:
            raise ValueError(f"syscalls have arguments 0 to 5, not {index}")
        return SECCOMP_DATA_ARGS + 8 * index

    def _offset(self, position: int, target: str | None) -> int:
        if target is None:
            return 0
        if target not in self._labels:
            raise ValueError(f"jump to undefined label {target!r}")
        offset = self._labels[target] - (position + 1)
        if offset < 0:
            raise ValueError(f"jump from instruction {position} back to {target!r}: BPF jumps only forward")
        if offset > 0xFF:
            raise ValueError(
                f"jump from instruction {position} to {target!r} is {offset} instructions, over 255"
            )
        return offset


def install_filter(program: tuple[Instruction, ...], flags: int = SECCOMP_FILTER_FLAG_TSYNC) -> None:
    """Install ``program`` as a seccomp filter (stacked on any already installed), after setting no_new_privs.

    Raises SandboxError when the kernel refuses it, naming the thread that could not be synchronised when
    TSYNC fails.
    """
    ensure_no_new_privs()
    filters = (_SockFilter * len(program))(
        *(
            _SockFilter(instruction.code, instruction.jump_true, instruction.jump_false, instruction.k)
            for instruction in program
        )
    )
    fprog = _SockFprog(len(program), filters)
    try:
        result = syscall(_native().number("seccomp"), SECCOMP_SET_MODE_FILTER, flags, ctypes.pointer(fprog))
    except OSError as error:
        raise SandboxError(f"seccomp: installing a filter failed with {error_name(error.errno)}") from error
    if result != 0:
        # With TSYNC the kernel answers the id of a thread it could not move onto the filter.
        raise SandboxError(f"seccomp: thread {result} could not be synchronised onto the filter (TSYNC)")


def _native() -> Architecture:
    architecture = native_architecture()
    if architecture is None:
        raise SandboxError("seccomp: this platform is not Linux on x86_64 or aarch64")
    return architecture


def _check_architecture(program: FilterBuilder, architecture: Architecture) -> None:
    """The first lines of every filter: kill a syscall made under another ABI, load the syscall number."""
    program.load_architecture()
    program.jump_if_equal(architecture.audit_arch, otherwise="foreign_abi")
    program.load_syscall_number()
    if architecture.x32_syscall_bit is not None:
        program.jump_if_any_bit(architecture.x32_syscall_bit, then="deny")


def syscall_filter(architecture: Architecture, own_pid: int) -> tuple[Instruction, ...]:
    """The stage-1 program for ``architecture`` in process ``own_pid`` (see ``restrict_syscalls``)."""
    program = FilterBuilder()
    _check_architecture(program, architecture)
    # clone3 passes its flags in memory a filter cannot read; ENOSYS makes glibc fall back to clone.
    program.jump_if_equal(architecture.number("clone3"), then="unsupported")
    program.jump_if_equal(architecture.number("clone"), then="clone")
    program.jump_if_equal(architecture.number("kill"), then="own_process_only")
    program.jump_if_equal(architecture.number("tgkill"), then="own_process_only")
    program.jump_if_equal(architecture.number("ioctl"), then="ioctl")
    for name in DENIED_SYSCALLS:
        if architecture.has(name):
            program.jump_if_equal(architecture.number(name), then="deny")
    program.return_action(SECCOMP_RET_ALLOW)

    # clone: threads only (no new processes), and no new namespaces. The kernel reads only the low 32 bits
    # of clone's flags, and so do we.
    program.label("clone")
    program.load_argument_low(0)
    program.jump_if_any_bit(CLONE_THREAD, otherwise="deny")
    program.jump_if_any_bit(CLONE_NEW_NAMESPACES, then="deny")
    program.return_action(SECCOMP_RET_ALLOW)

    # kill / tgkill: only this process. The whole 64-bit argument must equal our pid, so no high bits can
    # smuggle another pid past the comparison.
    program.label("own_process_only")
    program.load_argument_high(0)
    program.jump_if_equal(0, otherwise="deny")
    program.load_argument_low(0)
    program.jump_if_equal(own_pid, otherwise="deny")
    program.return_action(SECCOMP_RET_ALLOW)

    # ioctl: the kernel takes the request as 32 bits and ignores the high ones, so compare the low word only
    # (checking the high word too would let (1 << 32) | TIOCSTI through).
    program.label("ioctl")
    program.load_argument_low(1)
    program.jump_if_equal(TIOCSTI, then="deny")
    program.jump_if_equal(TIOCLINUX, then="deny")
    program.return_action(SECCOMP_RET_ALLOW)

    program.label("deny")
    program.return_action(errno_action(errno.EPERM))
    program.label("unsupported")
    program.return_action(errno_action(errno.ENOSYS))
    program.label("foreign_abi")
    program.return_action(SECCOMP_RET_KILL_PROCESS)
    return program.build()


def thread_creation_filter(architecture: Architecture) -> tuple[Instruction, ...]:
    """The stage-2 program for ``architecture``: clone and clone3 refused outright."""
    program = FilterBuilder()
    _check_architecture(program, architecture)
    program.jump_if_equal(architecture.number("clone"), then="deny")
    program.jump_if_equal(architecture.number("clone3"), then="deny")
    program.return_action(SECCOMP_RET_ALLOW)
    program.label("deny")
    program.return_action(errno_action(errno.EPERM))
    program.label("foreign_abi")
    program.return_action(SECCOMP_RET_KILL_PROCESS)
    return program.build()


def restrict_syscalls() -> None:
    """Stage 1: install the worker's syscall filter on every thread of the process (TSYNC).

    Refused with EPERM: creating sockets, processes and programs (fork, vfork, execve, clone without
    CLONE_THREAD or with a CLONE_NEW* flag), touching or signalling other processes (ptrace, process_vm_*,
    pidfd_*, kill and tgkill of any pid but our own, tkill, rt_*sigqueueinfo), mounts and namespaces, identity
    and capability changes, kernel modules, keyrings, bpf, perf, io_uring, clock and host-name changes, device
    nodes, and the TIOCSTI / TIOCLINUX terminal ioctls. clone3 fails with ENOSYS (glibc then uses clone, which
    the filter can check). A syscall made under a foreign ABI kills the process; x32 syscalls get EPERM.
    Everything else is allowed; sockets and pipes the process already has keep working.

    Sets no_new_privs. Raises SandboxError when seccomp is unavailable.
    """
    install_filter(syscall_filter(_native(), os.getpid()))


def forbid_new_threads() -> None:
    """Stage 2: refuse clone and clone3 from now on (EPERM), so no thread can be created; threads that exist
    keep running. ``threading.Thread.start`` then raises ``RuntimeError("can't start new thread")``.

    Stacks on stage 1 (or stands alone). Raises SandboxError when seccomp is unavailable.
    """
    install_filter(thread_creation_filter(_native()))
