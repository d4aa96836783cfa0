"""Thin ctypes access to the kernel: raw syscalls and prctl that raise OSError, and small facts about the
calling process (thread count, no_new_privs) that more than one confinement step needs.

libc is loaded on first use, so importing the sandbox on a system without a C library (or without Linux)
costs nothing and fails nowhere.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import threading

from .errors import SandboxError

# <linux/prctl.h>
PR_SET_SECCOMP = 22
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _as_c_argument(value: object) -> object:
    # A bare Python int would be passed to the variadic syscall() as a C int (32 bits): widen it to a long
    # so 64-bit arguments arrive whole. Pointers and ctypes values pass through unchanged.
    if value is None:
        return ctypes.c_void_p(None)
    if isinstance(value, int):
        return ctypes.c_long(value)
    return value


def error_name(code: int | None) -> str:
    """``ENOSYS (Function not implemented)`` for errno ``code``: the symbol and the text, for messages.

    ``code`` may be None because an OSError raised without an errno (``OSError("text")``) has none.
    """
    if code is None:
        return "an unknown error (no errno)"
    return f"{errno.errorcode.get(code, f'errno {code}')} ({os.strerror(code)})"


def syscall(number: int, *arguments: object) -> int:
    """Call syscall ``number`` directly (the kernel's result; OSError with the errno when it fails).

    Each argument is an int (passed as a C long), None (a null pointer) or a ctypes value or pointer.
    """
    function = _libc().syscall
    function.restype = ctypes.c_long
    ctypes.set_errno(0)
    result = function(ctypes.c_long(number), *(_as_c_argument(argument) for argument in arguments))
    if result == -1:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return int(result)


def prctl(option: int, *arguments: int) -> int:
    """prctl(2) with up to four further arguments (zero-filled); OSError when it fails."""
    function = _libc().prctl
    function.restype = ctypes.c_int
    padded = (*arguments, 0, 0, 0, 0)[:4]
    ctypes.set_errno(0)
    result = function(ctypes.c_int(option), *(ctypes.c_ulong(argument) for argument in padded))
    if result == -1:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return int(result)


def ensure_no_new_privs() -> None:
    """Set no_new_privs unless it is set already: seccomp and Landlock both require it of an unprivileged
    caller. It is inherited by every child and can never be unset, which is the point.
    """
    try:
        if prctl(PR_GET_NO_NEW_PRIVS) != 1:
            prctl(PR_SET_NO_NEW_PRIVS, 1)
    except OSError as error:
        raise SandboxError(
            f"could not set no_new_privs: prctl failed with {error_name(error.errno)}"
        ) from error


def thread_count() -> int:
    """How many threads this process has, counting threads Python did not start (e.g. from C libraries)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        # /proc may already be out of reach (Landlock); Python's own count is the best left.
        return threading.active_count()


def require_single_thread(step: str, reason: str) -> None:
    """Raise SandboxError naming ``step`` when the process has more than one thread: ``reason`` says why that
    would leave part of the process unconfined."""
    count = thread_count()
    if count > 1:
        raise SandboxError(
            f"{step}: the process has {count} threads, but {reason}; "
            "confine the process before starting threads"
        )
