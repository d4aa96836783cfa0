"""probe(): what it finds on this machine, that it changes nothing, and what it says on a kernel without
Landlock and seccomp (simulated by the without_kernel_support.py launcher)."""

from __future__ import annotations

import sys

from .helpers import SUPPORT, WITHOUT_KERNEL_SUPPORT, needs_linux, needs_sandbox, run_child

HIDE_KERNEL_SUPPORT = (sys.executable, str(WITHOUT_KERNEL_SUPPORT))


@needs_sandbox
def test_probe_finds_landlock_and_seccomp():
    assert SUPPORT.landlock_abi is not None and SUPPORT.landlock_abi >= 1
    assert SUPPORT.seccomp
    assert SUPPORT.problems == ()
    assert SUPPORT.complete


@needs_linux
def test_probe_leaves_the_process_unconfined():
    child = run_child(
        """
        def fork_and_reap():
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            return os.waitpid(pid, 0)[1]

        support = probe()
        attempt("seccomp_mode", lambda: status_field("Seccomp"))
        attempt("no_new_privs", lambda: status_field("NoNewPrivs"))
        attempt("fork", fork_and_reap)
        """
    )
    assert child["seccomp_mode"]["value"] == "0"
    assert child["no_new_privs"]["value"] == "0"
    assert child["fork"] == {"ok": True, "value": 0}


@needs_sandbox
def test_probe_without_kernel_support_reports_both_missing():
    child = run_child(
        """
        support = probe()
        attempt("abi", lambda: support.landlock_abi)
        attempt("seccomp", lambda: support.seccomp)
        attempt("complete", lambda: support.complete)
        attempt("problems", lambda: list(support.problems))
        """,
        launcher=HIDE_KERNEL_SUPPORT,
    )
    assert child["abi"]["value"] is None
    assert child["seccomp"]["value"] is False
    assert child["complete"]["value"] is False
    problems = child["problems"]["value"]
    assert len(problems) == 2
    assert "Landlock" in problems[0] and "ENOSYS" in problems[0]
    assert "seccomp" in problems[1] and "ENOSYS" in problems[1]


@needs_sandbox
def test_confine_without_kernel_support_raises_sandbox_error():
    child = run_child(
        """
        attempt("full", lambda: confine(SandboxPolicy(memory_bytes=None)))
        attempt("seccomp_only", lambda: confine(SandboxPolicy(memory_bytes=None, landlock=False)))
        limits_only = SandboxPolicy(memory_bytes=None, landlock=False, seccomp=False)
        attempt("limits_only", lambda: confine(limits_only))
        """,
        launcher=HIDE_KERNEL_SUPPORT,
    )
    assert child["full"]["error"] == "SandboxError" and "Landlock" in child["full"]["message"]
    assert child["seccomp_only"]["error"] == "SandboxError" and "seccomp" in child["seccomp_only"]["message"]
    assert child["limits_only"] == {"ok": True, "value": None}
