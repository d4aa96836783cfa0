"""File-system (and TCP and scope) confinement with Landlock, at the best ABI the kernel offers.

Landlock denies every *handled* access right that no rule grants. We handle every right the ABI knows and
grant rights only beneath the policy's trees, so a confined worker reaches nothing else: no other database,
no server keys, no /proc (not even its own /proc/self), no TCP (ABI 4+), no abstract UNIX sockets or signals
outside its own domain (ABI 6+). Files opened before confinement stay usable: Landlock checks at open time.
"""

from __future__ import annotations

import ctypes
import os
import stat
import struct
from collections.abc import Iterable
from pathlib import Path

from .errors import SandboxError
from .kernel import ensure_no_new_privs, error_name, require_single_thread, syscall
from .policy import SandboxPolicy

# Syscall numbers (the same on x86_64 and aarch64: they are above 424, where numbering is unified).
SYS_LANDLOCK_CREATE_RULESET = 444
SYS_LANDLOCK_ADD_RULE = 445
SYS_LANDLOCK_RESTRICT_SELF = 446

LANDLOCK_CREATE_RULESET_VERSION = 1 << 0
LANDLOCK_RULE_PATH_BENEATH = 1

# <linux/landlock.h> file-system access rights
ACCESS_FS_EXECUTE = 1 << 0
ACCESS_FS_WRITE_FILE = 1 << 1
ACCESS_FS_READ_FILE = 1 << 2
ACCESS_FS_READ_DIR = 1 << 3
ACCESS_FS_REMOVE_DIR = 1 << 4
ACCESS_FS_REMOVE_FILE = 1 << 5
ACCESS_FS_MAKE_CHAR = 1 << 6
ACCESS_FS_MAKE_DIR = 1 << 7
ACCESS_FS_MAKE_REG = 1 << 8
ACCESS_FS_MAKE_SOCK = 1 << 9
ACCESS_FS_MAKE_FIFO = 1 << 10
ACCESS_FS_MAKE_BLOCK = 1 << 11
ACCESS_FS_MAKE_SYM = 1 << 12
ACCESS_FS_REFER = 1 << 13  # ABI 2
ACCESS_FS_TRUNCATE = 1 << 14  # ABI 3
ACCESS_FS_IOCTL_DEV = 1 << 15  # ABI 5

ACCESS_NET_BIND_TCP = 1 << 0  # ABI 4
ACCESS_NET_CONNECT_TCP = 1 << 1  # ABI 4

SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1  # ABI 6

# The newest ABI whose rights this module knows; a newer kernel is used at this level.
HIGHEST_KNOWN_ABI = 7

# Rights that make sense on a regular file; a rule on a file granting any other right is refused (EINVAL).
_FILE_RIGHTS = (
    ACCESS_FS_EXECUTE | ACCESS_FS_WRITE_FILE | ACCESS_FS_READ_FILE | ACCESS_FS_TRUNCATE | ACCESS_FS_IOCTL_DEV
)


def handled_fs_rights(abi: int) -> int:
    """Every file-system right Landlock ABI ``abi`` knows."""
    rights = (1 << 13) - 1  # EXECUTE .. MAKE_SYM
    if abi >= 2:
        rights |= ACCESS_FS_REFER
    if abi >= 3:
        rights |= ACCESS_FS_TRUNCATE
    if abi >= 5:
        rights |= ACCESS_FS_IOCTL_DEV
    return rights


def ruleset_attr(abi: int) -> bytes:
    """The ``struct landlock_ruleset_attr`` for ``abi``, exactly as long as the fields that ABI has.

    The struct grew a u64 at ABI 4 (handled_access_net) and at ABI 6 (scoped); an older kernel refuses a
    longer struct unless the extra bytes are zero, so we send only what we fill in.
    """
    fields = [handled_fs_rights(abi)]
    if abi >= 4:
        fields.append(ACCESS_NET_BIND_TCP | ACCESS_NET_CONNECT_TCP)  # handled, and no rule grants them
    if abi >= 6:
        fields.append(SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL)
    return struct.pack(f"={len(fields)}Q", *fields)


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; OSError (ENOSYS: not built in, EOPNOTSUPP: not enabled at boot)."""
    return syscall(SYS_LANDLOCK_CREATE_RULESET, None, 0, LANDLOCK_CREATE_RULESET_VERSION)


def _rights_beneath(path: Path, writable: bool, handled: int) -> tuple[int, int]:
    """Open ``path`` (O_PATH) for a rule and choose its rights: (fd, allowed access)."""
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError as error:
        raise SandboxError(f"Landlock: cannot open {path} for a rule: {error_name(error.errno)}") from error
    if writable:
        # Everything but running programs and device ioctls.
        rights = handled & ~(ACCESS_FS_EXECUTE | ACCESS_FS_IOCTL_DEV)
    else:
        # No EXECUTE: shared objects are mmapped, not executed, and Landlock does not check mmap.
        rights = ACCESS_FS_READ_FILE | ACCESS_FS_READ_DIR
    if not stat.S_ISDIR(os.fstat(fd).st_mode):
        rights &= _FILE_RIGHTS
    return fd, rights & handled


def _add_path_rules(ruleset_fd: int, paths: Iterable[Path], writable: bool, handled: int) -> None:
    for path in paths:
        fd, rights = _rights_beneath(path, writable, handled)
        try:
            # struct landlock_path_beneath_attr is packed: u64 allowed_access, s32 parent_fd (12 bytes).
            attr = ctypes.create_string_buffer(struct.pack("=Qi", rights, fd), 12)
            syscall(SYS_LANDLOCK_ADD_RULE, ruleset_fd, LANDLOCK_RULE_PATH_BENEATH, attr, 0)
        except OSError as error:
            raise SandboxError(
                f"Landlock: landlock_add_rule for {path} failed with {error_name(error.errno)}"
            ) from error
        finally:
            os.close(fd)


def restrict_filesystem(policy: SandboxPolicy) -> int:
    """Confine the process with Landlock to ``policy.writable`` (read and write) and ``policy.readable`` (read
    only), deny TCP bind and connect (ABI 4+) and scope abstract UNIX sockets and signals (ABI 6+).

    Returns the ABI used. Raises SandboxError when Landlock is unavailable, a path cannot be opened, or the
    process already has other threads (a Landlock domain applies to the calling thread only).
    Sets no_new_privs, which Landlock requires.
    """
    try:
        kernel_abi = landlock_abi()
    except OSError as error:
        raise SandboxError(
            f"Landlock is unavailable: landlock_create_ruleset failed with {error_name(error.errno)}"
        ) from error
    abi = min(kernel_abi, HIGHEST_KNOWN_ABI)
    require_single_thread("Landlock", "a Landlock domain confines only the thread that enforces it")
    handled = handled_fs_rights(abi)
    attr_bytes = ruleset_attr(abi)
    attr = ctypes.create_string_buffer(attr_bytes, len(attr_bytes))
    try:
        ruleset_fd = syscall(SYS_LANDLOCK_CREATE_RULESET, attr, len(attr_bytes), 0)
    except OSError as error:
        raise SandboxError(
            f"Landlock: creating an ABI {abi} ruleset failed with {error_name(error.errno)}"
        ) from error
    try:
        _add_path_rules(ruleset_fd, policy.writable, writable=True, handled=handled)
        _add_path_rules(ruleset_fd, policy.readable, writable=False, handled=handled)
        ensure_no_new_privs()
        try:
            syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset_fd, 0)
        except OSError as error:
            raise SandboxError(
                f"Landlock: landlock_restrict_self failed with {error_name(error.errno)}"
            ) from error
    finally:
        os.close(ruleset_fd)
    return abi
