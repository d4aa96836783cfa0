"""seccomp: the BPF builder, the syscall tables, stage 1 (what a worker may not do, and what it still may)
and stage 2 (no new threads)."""

from __future__ import annotations

import errno
import platform
import re
import signal
from pathlib import Path

import pytest

from spacetimedb.sandbox.seccomp import (
    BPF_JMP_JEQ_K,
    BPF_RET_K,
    SECCOMP_RET_ALLOW,
    FilterBuilder,
    Instruction,
    errno_action,
    syscall_filter,
    thread_creation_filter,
)
from spacetimedb.sandbox.syscalls import AARCH64, X86_64

from .helpers import assert_allowed, assert_denied, needs_sandbox, run_child


def test_builder_resolves_labels_to_forward_offsets():
    program = FilterBuilder()
    program.load_syscall_number()
    program.jump_if_equal(39, then="deny")
    program.jump_if_equal(40, otherwise="deny")
    program.return_action(SECCOMP_RET_ALLOW)
    program.label("deny")
    program.return_action(errno_action(errno.EPERM))
    built = program.build()
    assert built[1] == Instruction(BPF_JMP_JEQ_K, 2, 0, 39)
    assert built[2] == Instruction(BPF_JMP_JEQ_K, 0, 1, 40)
    assert built[4] == Instruction(BPF_RET_K, 0, 0, 0x00050000 | errno.EPERM)


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (lambda p: (p.label("back"), p.jump_if_equal(1, then="back"), p.return_action(0)), "back"),
        (lambda p: (p.jump_if_equal(1, then="nowhere"), p.return_action(0)), "undefined"),
        (
            lambda p: (
                p.jump_if_equal(1, then="far"),
                *[p.load_syscall_number() for _ in range(256)],
                p.label("far"),
                p.return_action(0),
            ),
            "over 255",
        ),
        (lambda p: p.load_syscall_number(), "must end with a return"),
        (lambda p: (p.label("twice"), p.label("twice")), "twice"),
    ],
    ids=["backward", "undefined", "too-far", "no-return", "duplicate-label"],
)
def test_builder_refuses_programs_bpf_cannot_express(write, message):
    program = FilterBuilder()
    with pytest.raises(ValueError, match=message):
        write(program)
        program.build()


@pytest.mark.parametrize("architecture", [X86_64, AARCH64], ids=lambda architecture: architecture.name)
def test_both_filters_assemble_for_every_architecture(architecture):
    assert len(syscall_filter(architecture, own_pid=12345)) < 200
    assert len(thread_creation_filter(architecture)) < 20


def test_tables_list_only_syscalls_the_architecture_has():
    for legacy in ("fork", "vfork", "mknod", "iopl", "ioperm", "modify_ldt", "uselib"):
        assert X86_64.has(legacy) and not AARCH64.has(legacy), legacy


@pytest.mark.parametrize(
    ("architecture", "headers"),
    [
        (X86_64, ("/usr/include/x86_64-linux-gnu/asm/unistd_64.h", "/usr/include/asm/unistd_64.h")),
        (AARCH64, ("/usr/include/asm-generic/unistd.h",)),  # arm64 uses the generic table
    ],
    ids=["x86_64", "aarch64"],
)
def test_syscall_tables_match_the_kernel_headers(architecture, headers):
    header = next((Path(path) for path in headers if Path(path).exists()), None)
    if header is None:
        pytest.skip(f"none of {', '.join(headers)} is installed")
    defined = {
        name: int(number) for name, number in re.findall(r"#define __NR_(\w+)\s+(\d+)\b", header.read_text())
    }
    compared = {name: number for name, number in architecture.numbers.items() if name in defined}
    assert compared == {name: defined[name] for name in compared}
    assert len(compared) > 60  # the header is old enough to lack only the newest syscalls
    # And every syscall the header lacks is one of the newest (unified numbers from 424 on).
    assert all(number >= 424 for name, number in architecture.numbers.items() if name not in defined)


# ---------------------------------------------------------------------------------------------------- stage 1

# The filter alone, capabilities kept: every action below would succeed, or fail with another errno, without
# it (and is chosen to be harmless if it did succeed), so EPERM can only come from the filter.
_FILTER_ONLY = "restrict_syscalls()\n"


@needs_sandbox
@pytest.mark.parametrize(
    ("snippet", "error", "error_number"),
    [
        ("import socket; socket.socket()", "PermissionError", errno.EPERM),
        ("import socket; socket.socket(socket.AF_UNIX)", "PermissionError", errno.EPERM),
        ("import socket; socket.socketpair()", "PermissionError", errno.EPERM),
        ("os.fork()", "PermissionError", errno.EPERM),
        ("import subprocess; subprocess.run(['id'])", "PermissionError", errno.EPERM),
        ("os.execv(sys.executable, [sys.executable, '-c', 'pass'])", "PermissionError", errno.EPERM),
        ("os.kill(os.getppid(), 0)", "PermissionError", errno.EPERM),
        ("os.kill(0, 0)", "PermissionError", errno.EPERM),
        ("os.setuid(0)", "PermissionError", errno.EPERM),
        ("os.setgid(0)", "PermissionError", errno.EPERM),
        ("os.chroot('/')", "PermissionError", errno.EPERM),
        ("import socket; socket.sethostname(os.uname().nodename)", "PermissionError", errno.EPERM),
        ("os.mknod(ARGS['fifo'], 0o600 | __import__('stat').S_IFIFO)", "PermissionError", errno.EPERM),
    ],
    ids=[
        "socket",
        "unix-socket",
        "socketpair",
        "fork",
        "subprocess",
        "execv",
        "kill-parent",
        "kill-process-group",
        "setuid",
        "setgid",
        "chroot",
        "sethostname",
        "mknod",
    ],
)
def test_stage_1_denies(snippet, error, error_number, tmp_path):
    child = run_child(
        _FILTER_ONLY + f"attempt('action', lambda: exec({snippet!r}))", args={"fifo": str(tmp_path / "f")}
    )
    assert_denied(child["action"], error, error_number)


# Raw syscalls glibc has no wrapper for, or whose arguments the filter must judge: name -> (number by
# architecture, arguments).
# Arguments are Python expressions evaluated in the child.
_RAW_SYSCALLS = {
    # ptrace(PTRACE_ATTACH, a child of ours): root could, without the filter
    "ptrace": ({"x86_64": 101, "aarch64": 117}, ("PTRACE_ATTACH", "GRANDCHILD", 0, 0)),
    # getpid under the x32 ABI
    "x32-getpid": ({"x86_64": 0x40000000 | 39}, ()),
    # kill(parent) with junk in the high half: must not pass as kill(self)
    "kill-high-bits": ({"x86_64": 62, "aarch64": 129}, ("(1 << 32) | os.getpid()", 0)),
    # tgkill(parent, parent, 0)
    "tgkill-parent": ({"x86_64": 234, "aarch64": 131}, ("PARENT", "PARENT", 0)),
    # tkill(own tid, 0): refused outright
    "tkill": ({"x86_64": 200, "aarch64": 130}, ("threading.get_native_id()", 0)),
    # ioctl(/dev/null, TIOCSTI) with high bits set, which the kernel ignores (ENOTTY without the filter)
    "tiocsti-high-bits": (
        {"x86_64": 16, "aarch64": 29},
        ("DEVNULL", "(1 << 32) | 0x5412", "ctypes.byref(ctypes.c_char(b'x'))"),
    ),
    # clone(CLONE_THREAD | CLONE_SIGHAND | CLONE_VM | CLONE_NEWUSER): the kernel itself would say EINVAL
    "clone-thread-newuser": (
        {"x86_64": 56, "aarch64": 220},
        ("0x00010000 | 0x00000800 | 0x00000100 | 0x10000000", 0, 0, 0, 0),
    ),
    "unshare": ({"x86_64": 272, "aarch64": 97}, ("0x10000000",)),
    "mount": ({"x86_64": 165, "aarch64": 40}, ("b'none'", "b'/nonexistent/target'", "b'tmpfs'", 0, 0)),
    "bpf": ({"x86_64": 321, "aarch64": 280}, (0, 0, 0)),
    "io_uring_setup": ({"x86_64": 425, "aarch64": 425}, (1, 0)),
    "pidfd_open": ({"x86_64": 434, "aarch64": 434}, ("PARENT", 0)),
    "process_vm_readv": ({"x86_64": 310, "aarch64": 270}, ("PARENT", 0, 0, 0, 0, 0)),
    "capset": ({"x86_64": 126, "aarch64": 91}, (0, 0)),
}


@needs_sandbox
@pytest.mark.parametrize("name", sorted(_RAW_SYSCALLS))
def test_stage_1_denies_raw_syscall(name):
    numbers, arguments = _RAW_SYSCALLS[name]
    machine = platform.machine()
    if machine not in numbers:
        pytest.skip(f"{name} does not exist on {machine}")
    child = run_child(
        f"""
        import ctypes
        import threading

        libc = ctypes.CDLL(None, use_errno=True)
        PARENT, PTRACE_ATTACH = os.getppid(), 16
        DEVNULL = os.open(os.devnull, os.O_RDWR)
        # A child to try ptrace on; it exits when we do (its read of the pipe ends).
        wait_end, exit_end = os.pipe()
        GRANDCHILD = os.fork()
        if GRANDCHILD == 0:
            os.close(exit_end)
            os.read(wait_end, 1)
            os._exit(0)


        def as_c_argument(value):
            if isinstance(value, int):
                return ctypes.c_long(value)
            return ctypes.c_char_p(value) if isinstance(value, bytes) else value


        def raw(number, *arguments):
            result = libc.syscall(ctypes.c_long(number), *map(as_c_argument, arguments))
            return [result, ctypes.get_errno()]


        {_FILTER_ONLY}
        attempt("raw", lambda: raw({", ".join(map(str, (numbers[machine], *arguments)))}))
        """
    )
    assert assert_allowed(child["raw"]) == [-1, errno.EPERM]


@needs_sandbox
@pytest.mark.skipif(platform.machine() != "x86_64", reason="the i386 syscall ABI exists on x86_64 only")
def test_stage_1_kills_a_process_that_uses_the_i386_abi():
    child = run_child(
        f"""
        import ctypes
        import mmap

        {_FILTER_ONLY}
        # mov eax, 20 (getpid in the i386 table); int 0x80; ret
        code = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        code.write(b"\\xb8\\x14\\x00\\x00\\x00\\xcd\\x80\\xc3")
        ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(code)))()
        attempt("survived", lambda: True)
        """,
        expect_report=False,
    )
    assert child.returncode == -signal.SIGSYS, child.stderr


# ---------------------------------------------------------------------------------------------------- stage 2


@needs_sandbox
def test_stage_2_forbids_new_threads_but_lets_old_ones_finish():
    child = run_child(
        f"""
        import threading

        {_FILTER_ONLY}
        release = threading.Event()
        finished = []
        old = threading.Thread(target=lambda: (release.wait(30), finished.append(True)))
        old.start()
        forbid_new_threads()
        attempt("start", lambda: threading.Thread(target=lambda: None).start())
        attempt("threads_after_failure", lambda: threading.active_count())
        release.set()
        old.join(30)
        attempt("old_thread_finished", lambda: finished == [True] and not old.is_alive())
        attempt("start_again", lambda: threading.Thread(target=lambda: None).start())
        """
    )
    assert_denied(child["start"], "RuntimeError")
    assert child["start"]["message"] == "can't start new thread"
    assert assert_allowed(child["threads_after_failure"]) == 2  # the failed thread left nothing behind
    assert assert_allowed(child["old_thread_finished"]) is True
    assert_denied(child["start_again"], "RuntimeError")


@needs_sandbox
def test_clone3_gets_enosys_in_stage_1_and_both_clones_get_eperm_in_stage_2():
    child = run_child(
        """
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        restrict_syscalls()
        CLONE3, CLONE = 435, {"x86_64": 56, "aarch64": 220}[os.uname().machine]
        CLONE_THREAD = 0x00010000


        def raw(number, *arguments):
            result = libc.syscall(ctypes.c_long(number), *(ctypes.c_long(argument) for argument in arguments))
            return [result, ctypes.get_errno()]


        # Both are harmless as written: clone3(NULL, 0) and clone(CLONE_THREAD) without CLONE_SIGHAND are
        # refused by the kernel itself (EINVAL) when the filter lets them through.
        attempt("clone3_stage_1", lambda: raw(CLONE3, 0, 0))
        attempt("clone_stage_1", lambda: raw(CLONE, CLONE_THREAD, 0, 0, 0, 0))
        forbid_new_threads()
        attempt("clone3_stage_2", lambda: raw(CLONE3, 0, 0))
        attempt("clone_stage_2", lambda: raw(CLONE, CLONE_THREAD, 0, 0, 0, 0))
        """
    )
    assert assert_allowed(child["clone3_stage_1"]) == [-1, errno.ENOSYS]
    assert assert_allowed(child["clone_stage_1"]) == [-1, errno.EINVAL]  # passed the filter
    assert assert_allowed(child["clone3_stage_2"]) == [-1, errno.EPERM]
    assert assert_allowed(child["clone_stage_2"]) == [-1, errno.EPERM]
