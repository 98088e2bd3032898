"""The daemon's shim fork server: one pre-imported shim process forks every task's shim.

A serving shim exec'd per task pays a Python start and the shim's imports
(some 40 ms of CPU) before it can run ``runc create``; a fork of a process that
has imported the shim once costs about a millisecond. :class:`ForkServer`
starts that process (``python -S -P -m pycontainerd.shim zygote``, see
``pycontainerd.shim._main``) on first use, in a session of its own, and
hands it each task's listener and log over a ``SOCK_SEQPACKET`` socket pair.
It never forks the daemon itself (the daemon has threads).

Robustness, in the order things go wrong:

* the fork server cannot be started, or dies before it has the request (the
  send fails): the shim is exec'd as before, and the next task starts a new
  fork server;
* it answers ``error: ...`` (nothing forked): exec'd as well;
* it dies or hangs after it had the request: it is killed and ``0`` is
  returned. A child forked before that holds the listener and serves; if none
  was, nobody holds it once the launcher closes its copy and the first call
  fails ``Unavailable``. Never two shims on one socket.
* after :data:`MAX_FAILURES` failures in a row it is not used any more (exec).

Forked shims are the fork server's children, reaped by the kernel while it
lives (it ignores ``SIGCHLD``) and re-parented to init or the subreaper when it
exits; the fork server exits when the daemon does (its socket closes). A
restarted daemon starts a new one; its recovery finds shims by their bundles'
``address`` files, as for exec'd shims.

An exec'd shim (and the fork server) is the daemon's child until the daemon
dies: :class:`ChildReaper` waits for exactly those pids, from one thread,
through pidfds (``pidfd_open(2)``), never ``waitpid(-1)``, which would steal the
exits of the daemon's other children (``runc``, ``umoci``, the shims'
``delete``). If the daemon dies first they are re-parented to init or the
nearest subreaper, as containerd's shims are, and keep serving.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import threading
from collections.abc import Mapping, Sequence

from pycontainerd import shim

MAX_FAILURES = 3
REPLY_TIMEOUT = 10.0
"""Seconds for an answer (the first one waits for the fork server's imports)."""


class ChildReaper:
    """Reap registered child pids when they exit, from one daemon thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pids: dict[int, int] = {}  # pidfd -> pid
        self._poll = select.poll()
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._poll.register(self._wake_r, select.POLLIN)
        self._thread: threading.Thread | None = None

    def watch(self, pid: int) -> None:
        """Reap ``pid`` (a child of this process) once it exits."""
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:  # no pidfds (kernel < 5.3): a thread waits for this one child
            threading.Thread(
                target=self._wait, args=(pid,), name=f"reap-{pid}", daemon=True
            ).start()
            return
        with self._lock:
            self._pids[pidfd] = pid
            self._poll.register(pidfd, select.POLLIN)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="shim-reaper", daemon=True)
                self._thread.start()
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_w, b"\0")

    def watched(self) -> list[int]:
        """The pids registered and not reaped yet."""
        with self._lock:
            return sorted(self._pids.values())

    @staticmethod
    def _wait(pid: int) -> None:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)

    def _run(self) -> None:
        while True:
            for fd, _ in self._poll.poll():
                if fd == self._wake_r:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_r, 4096)
                    continue
                with self._lock:
                    pid = self._pids.pop(fd, 0)
                    self._poll.unregister(fd)
                os.close(fd)
                if pid:
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(pid, 0)  # readable pidfd: it has exited, no wait


REAPER = ChildReaper()
"""The process's reaper of the shims it spawned."""


def spawn_exec_reaped(
    command: Sequence[str], args: list[str], env: Mapping[str, str], listen_fd: int, log_fd: int
) -> int:
    """``shim.spawn_exec``, the child reaped by :data:`REAPER` when it exits."""
    pid = shim.spawn_exec(command, args, env, listen_fd, log_fd)
    REAPER.watch(pid)
    return pid


class ForkServer:
    """A shim fork server, started on first use and replaced when it dies.

    Its :meth:`spawn` is a ``shim.Spawner``: pass it to ``shim.launch_serve``.
    Thread-safe: requests are serialized (a fork takes about a millisecond).
    """

    def __init__(self, *, max_failures: int = MAX_FAILURES) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._key: tuple[tuple[str, ...], tuple[tuple[str, str], ...]] | None = None
        self._max_failures = max_failures
        self.pid = 0
        """The running fork server's pid (0: none)."""
        self.failures = 0
        """Failures in a row; at ``max_failures`` every shim is exec'd."""

    @property
    def enabled(self) -> bool:
        return self.failures < self._max_failures

    def spawn(
        self,
        command: Sequence[str],
        args: list[str],
        env: Mapping[str, str],
        listen_fd: int,
        log_fd: int,
    ) -> int:
        """Fork a serving shim with ``args`` (exec it when the fork server cannot).

        Returns:
            The shim's pid; 0 when the fork server died with the request (see
            the module's notes).

        Raises:
            OSError: neither the fork server nor an exec could start the shim.
        """
        with self._lock:
            if not self.enabled:
                return spawn_exec_reaped(command, args, env, listen_fd, log_fd)
            try:
                sock = self._ensure(command, env)
                socket.send_fds(sock, ["\0".join(args).encode()], [listen_fd, log_fd])
            except OSError:
                self._lost()
                return spawn_exec_reaped(command, args, env, listen_fd, log_fd)
            try:
                reply = sock.recv(256).decode(errors="replace")
            except OSError:  # a timeout too
                reply = ""
            if reply.isdigit():
                self.failures = 0
                return int(reply)
            if reply:  # it answered: nothing was forked
                self.failures += 1
                return spawn_exec_reaped(command, args, env, listen_fd, log_fd)
            self._lost()
            return 0

    def close(self) -> None:
        """Close the socket: the fork server exits; forked shims keep serving."""
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None
            self.pid = 0
            self._key = None

    def _ensure(self, command: Sequence[str], env: Mapping[str, str]) -> socket.socket:
        key = (tuple(command), tuple(sorted(env.items())))
        if self._sock is not None and key == self._key:
            return self._sock
        if self._sock is not None:  # another shim command or environment: a new one
            self._sock.close()
            self._sock = None
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
            actions = [
                (os.POSIX_SPAWN_DUP2, null, 0),
                (os.POSIX_SPAWN_DUP2, null, 1),
                (os.POSIX_SPAWN_DUP2, theirs.fileno(), 3),
            ]
            try:
                argv = [*command, "-cmdline-room", " " * shim.CMDLINE_ROOM, "zygote"]
                pid = os.posix_spawn(
                    argv[0], argv, dict(env), file_actions=actions, setsid=True, setsigmask=()
                )
            finally:
                os.close(null)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        REAPER.watch(pid)
        ours.settimeout(REPLY_TIMEOUT)
        self._sock, self._key, self.pid = ours, key, pid
        return ours

    def _lost(self) -> None:
        self.failures += 1
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        self.pid = 0
        self._key = None


FORK_SERVER = ForkServer()
"""This process's shim fork server (``start_shim`` uses it)."""
