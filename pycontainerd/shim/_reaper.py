"""The shim as subreaper: every child's exit, reaped once, routed once.

The shim is ``PR_SET_CHILD_SUBREAPER``: a container's processes are
re-parented to it when runc exits, so the shim reaps both the runc commands it
runs and the containers' processes, with one ``waitpid(-1, WNOHANG)`` loop
woken by ``SIGCHLD``. A runc command's pid is registered before it can be
reaped (spawn and registration hold the reaper's lock), and its status goes to
whoever waits for the command; every other exit goes to ``on_exit``, which
must not block (it queues).
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import signal
import threading
from collections.abc import Callable, Sequence

PR_SET_CHILD_SUBREAPER = 36


def set_child_subreaper() -> None:
    """Make this process the subreaper of its descendants (``prctl(2)``).

    Raises:
        OSError: the kernel refused.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def exit_code(status: int) -> int:
    """containerd's exit status of a wait status: the code, or 128 + the signal."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    return 255


class Reaper:
    """Reap children and route their exits.

    Args:
        on_exit: called with ``(pid, exit_status)`` for every child that is not a
            command started with :meth:`spawn`, from the reaping thread.
    """

    def __init__(self, on_exit: Callable[[int, int], None]) -> None:
        self._on_exit = on_exit
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._commands: dict[int, int | None] = {}
        self._installed = False

    def install(self) -> int:
        """Install the ``SIGCHLD`` handler (main thread); returns the fd to poll."""
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        self._wakeup = r
        self._installed = True
        return r

    def drain_wakeup(self) -> None:
        """Empty the wakeup pipe after ``select`` found it readable."""
        try:
            while os.read(self._wakeup, 4096):
                pass
        except BlockingIOError:
            pass

    def reap(self) -> None:
        """Reap every exited child now (``waitpid(-1, WNOHANG)`` until none)."""
        while True:
            with self._lock:
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    return
                if pid == 0:
                    return
                code = exit_code(status)
                if pid in self._commands:
                    self._commands[pid] = code
                    self._cond.notify_all()
                    continue
            self._on_exit(pid, code)

    def spawn(
        self,
        argv: Sequence[str],
        *,
        stdin: int,
        stdout: int,
        stderr: int,
        env: dict[str, str] | None = None,
        extra: Sequence[int] = (),
    ) -> int:
        """Start a command whose exit :meth:`wait` reports; returns its pid.

        ``extra`` fds become the child's fds 3, 4, ...; every other fd of the shim
        is close-on-exec. Signals the shim ignores are reset to their defaults.
        """
        actions: list[tuple[int, int, int]] = [
            (os.POSIX_SPAWN_DUP2, stdin, 0),
            (os.POSIX_SPAWN_DUP2, stdout, 1),
            (os.POSIX_SPAWN_DUP2, stderr, 2),
        ]
        actions += [(os.POSIX_SPAWN_DUP2, fd, 3 + i) for i, fd in enumerate(extra)]
        with self._lock:
            pid = _spawn(argv, env if env is not None else dict(os.environ), actions)
            self._commands[pid] = None
        return pid

    def wait(self, pid: int) -> int:
        """Block until the command ``pid`` exits; its exit status.

        Without :meth:`install` (a one-shot command such as the shim's
        ``delete``), the command is reaped here directly.
        """
        if not self._installed:
            with self._lock:
                self._commands.pop(pid, None)
            return exit_code(os.waitpid(pid, 0)[1])
        with self._cond:
            while self._commands.get(pid) is None:
                self._cond.wait(1.0)
            code = self._commands.pop(pid)
        assert code is not None
        return code


def _spawn(argv: Sequence[str], env: dict[str, str], actions: list[tuple[int, int, int]]) -> int:
    # Duplicate every source above the targets first, so that a dup2 onto
    # fd 3 cannot clobber a source that happens to be fd 3.
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 64) for _, fd, _ in actions]
    try:
        moved = [(op, src, target) for (op, _, target), src in zip(actions, high, strict=True)]
        defaults = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGCHLD)
        return os.posix_spawnp(argv[0], list(argv), env, file_actions=moved, setsigdef=defaults)
    finally:
        for fd in high:
            os.close(fd)
