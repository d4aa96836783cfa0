"""confine(): each mechanism switched off on its own, and what a confined worker can still do."""

from __future__ import annotations

import errno
import signal
import socket

from .helpers import assert_allowed, assert_denied, needs_sandbox, run_child


@needs_sandbox
def test_confined_worker_keeps_threads_signals_to_itself_and_inherited_sockets(tmp_path):
    """Everything on (as a worker runs): the socket the server handed over still carries messages."""
    parent_end, child_end = socket.socketpair()
    with parent_end, child_end:
        parent_end.sendall(b"from the server")
        child = run_child(
            """
            import signal
            import socket
            import threading

            received_signals = []
            signal.signal(signal.SIGUSR1, lambda number, frame: received_signals.append(number))
            confine(worker_policy())

            def run_thread():
                results = []
                thread = threading.Thread(target=lambda: results.append(threading.get_native_id()))
                thread.start()
                thread.join()
                return results[0] != threading.get_native_id()

            def talk():
                with socket.socket(fileno=ARGS["fd"]) as connection:
                    received = connection.recv(100).decode()
                    connection.sendall(b"from the worker")
                    return received

            attempt("thread", run_thread)
            attempt("kill_self", lambda: os.kill(os.getpid(), 0))
            attempt("pthread_kill_self", lambda: signal.pthread_kill(threading.get_ident(), 0))
            attempt("raise_handled_signal", lambda: signal.raise_signal(signal.SIGUSR1) or received_signals)
            attempt("socket", talk)
            """,
            args={"fd": child_end.fileno(), "db": str(tmp_path)},
            pass_fds=[child_end.fileno()],
        )
        assert parent_end.recv(100) == b"from the worker"
    assert assert_allowed(child["thread"]) is True
    for name in ("kill_self", "pthread_kill_self"):
        assert_allowed(child[name])
    assert assert_allowed(child["raise_handled_signal"]) == [signal.SIGUSR1]
    assert assert_allowed(child["socket"]) == "from the server"


@needs_sandbox
def test_confine_without_landlock_applies_limits_and_seccomp_only(tmp_path):
    (tmp_path / "other.txt").write_text("reachable")
    child = run_child(
        """
        import resource
        import socket

        attempt("abi", lambda: confine(SandboxPolicy(landlock=False, max_open_files=100)))
        attempt("read_anywhere", lambda: Path(ARGS["file"]).read_text())
        attempt("socket", lambda: socket.socket())
        attempt("open_files", lambda: resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        attempt("seccomp_mode", lambda: status_field("Seccomp"))
        """,
        args={"file": str(tmp_path / "other.txt")},
    )
    assert assert_allowed(child["abi"]) is None
    assert assert_allowed(child["read_anywhere"]) == "reachable"
    assert_denied(child["socket"], errno=errno.EPERM)
    assert assert_allowed(child["open_files"]) == 100
    assert assert_allowed(child["seccomp_mode"]) == "2"


@needs_sandbox
def test_confine_without_seccomp_applies_limits_and_landlock_only(tmp_path):
    (tmp_path / "db").mkdir()
    (tmp_path / "other.txt").write_text("unreachable")
    child = run_child(
        """
        import socket

        attempt("abi", lambda: confine(worker_policy(seccomp=False)))
        attempt("read_outside", lambda: Path(ARGS["file"]).read_text())
        attempt("socket", lambda: socket.socket(socket.AF_UNIX).close())

        def fork_and_reap():
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            return os.waitpid(pid, 0)[1]

        attempt("fork", fork_and_reap)
        """,
        args={"db": str(tmp_path / "db"), "file": str(tmp_path / "other.txt")},
    )
    assert assert_allowed(child["abi"]) >= 1
    assert_denied(child["read_outside"], errno=errno.EACCES)
    assert_allowed(child["socket"])
    assert assert_allowed(child["fork"]) == 0


@needs_sandbox
def test_confine_with_neither_applies_only_the_limits(tmp_path):
    (tmp_path / "other.txt").write_text("reachable")
    child = run_child(
        """
        import resource

        attempt("abi", lambda: confine(SandboxPolicy(landlock=False, seccomp=False)))
        attempt("read_anywhere", lambda: Path(ARGS["file"]).read_text())
        attempt("seccomp_mode", lambda: status_field("Seccomp"))
        attempt("no_new_privs", lambda: status_field("NoNewPrivs"))
        attempt("address_space", lambda: resource.getrlimit(resource.RLIMIT_AS)[0])
        """,
        args={"file": str(tmp_path / "other.txt")},
    )
    assert assert_allowed(child["abi"]) is None
    assert assert_allowed(child["read_anywhere"]) == "reachable"
    assert assert_allowed(child["seccomp_mode"]) == "0"
    assert assert_allowed(child["no_new_privs"]) == "1"
    assert assert_allowed(child["address_space"]) == 2 << 30


@needs_sandbox
def test_a_confined_process_can_still_kill_itself(tmp_path):
    child = run_child(
        """
        import signal

        confine(worker_policy())
        os.kill(os.getpid(), signal.SIGKILL)
        attempt("survived", lambda: True)
        """,
        args={"db": str(tmp_path)},
        expect_report=False,
    )
    assert child.returncode == -9
    assert child.stdout == ""
