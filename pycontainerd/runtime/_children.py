"""Reaping the serving shims the daemon spawned itself.

``start_shim`` spawns each task's serving shim directly (no ``start``
interpreter in between to exit and leave it to init), so the shim is the
daemon's child until the daemon dies: when it exits first, someone must
``waitpid`` it or it stays a zombie. One thread per process watches every such
child through a pidfd (``pidfd_open(2)``, readable once the child exited) and
reaps exactly those pids: never ``waitpid(-1)``, which would steal the exits of
the daemon's other children (``runc``, ``umoci``, the shims' ``delete``).

If the daemon dies first, its shims are re-parented to init or the nearest
subreaper, as containerd's are, and keep serving.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading


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
