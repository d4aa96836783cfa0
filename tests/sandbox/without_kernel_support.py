"""Run a command as if the kernel had neither Landlock nor seccomp.

    python tests/sandbox/without_kernel_support.py CMD ARGS...

Installs a seccomp filter (with the sandbox's own BPF builder) under which landlock_create_ruleset,
landlock_add_rule, landlock_restrict_self and seccomp fail with ENOSYS and prctl(PR_SET_SECCOMP) with EINVAL,
which is what a kernel built without them answers, then replaces itself with CMD. Everything CMD starts
inherits the filter (and no_new_privs, which installing it sets), so a whole server can be tried on such a
"kernel" for real.
"""

from __future__ import annotations

import errno
import os
import sys

from spacetimedb.sandbox.kernel import PR_SET_SECCOMP
from spacetimedb.sandbox.seccomp import (
    SECCOMP_RET_ALLOW,
    FilterBuilder,
    Instruction,
    errno_action,
    install_filter,
)
from spacetimedb.sandbox.syscalls import Architecture, native_architecture

HIDDEN_SYSCALLS = ("landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self", "seccomp")


def hiding_filter(architecture: Architecture) -> tuple[Instruction, ...]:
    """The filter that makes Landlock and seccomp look absent on ``architecture``."""
    program = FilterBuilder()
    program.load_architecture()
    # Another ABI has other numbers; this is a test aid, not a sandbox, so let such syscalls be.
    program.jump_if_equal(architecture.audit_arch, otherwise="allow")
    program.load_syscall_number()
    for name in HIDDEN_SYSCALLS:
        program.jump_if_equal(architecture.number(name), then="not_implemented")
    program.jump_if_equal(architecture.number("prctl"), then="prctl")
    program.label("allow")
    program.return_action(SECCOMP_RET_ALLOW)
    program.label("prctl")
    program.load_argument_low(0)
    program.jump_if_equal(PR_SET_SECCOMP, then="invalid")
    program.return_action(SECCOMP_RET_ALLOW)
    program.label("not_implemented")
    program.return_action(errno_action(errno.ENOSYS))
    program.label("invalid")
    program.return_action(errno_action(errno.EINVAL))
    return program.build()


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        sys.exit(f"usage: {argv[0]} CMD ARGS...")
    architecture = native_architecture()
    if architecture is None:
        sys.exit(f"{argv[0]}: needs Linux on x86_64 or aarch64")
    install_filter(hiding_filter(architecture))
    os.execvp(argv[1], argv[1:])


if __name__ == "__main__":
    main(sys.argv)
