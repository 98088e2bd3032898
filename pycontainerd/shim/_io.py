"""A process's stdio: the client's FIFOs and log URIs, handed to the runtime.

Without a terminal, stdout and stderr are opened here and given to runc as
the container's fds 1 and 2: the container writes straight into the client's
FIFO (or ``file://`` log), there is no copy loop. Stdin goes through a pipe
fed by a small thread, so that ``close_io`` can give the container its EOF.
``binary://path?k=v`` starts containerd's logging-binary protocol: the
binary gets the container's stdout and stderr on fds 3 and 4 and says it is
ready by writing a byte to fd 5 and closing it.

With a terminal, runc sends the pty master over the console socket
(``SCM_RIGHTS``); two threads copy between it and the FIFOs, and
``resize_pty`` is a ``TIOCSWINSZ`` on the master.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import socket
import stat
import struct
import termios
import threading
from collections.abc import Callable

from pycontainerd.api import errdefs

from ._reaper import Reaper
from ._rpc import log

_LOGGER_READY_TIMEOUT = 10.0


def _unquote(text: str) -> str:
    out = bytearray()
    i = 0
    raw = text.encode()
    while i < len(raw):
        if raw[i] == 0x25 and i + 2 < len(raw):
            try:
                out.append(int(raw[i + 1 : i + 3], 16))
                i += 3
                continue
            except ValueError:
                pass
        out.append(raw[i])
        i += 1
    return out.decode("utf-8", "replace")


def parse_binary_uri(uri: str) -> tuple[str, list[str]]:
    """``binary:///bin/logger?a=1&b`` -> ``("/bin/logger", ["a", "1", "b"])``."""
    rest = uri.removeprefix("binary://")
    path, _, query = rest.partition("?")
    args: list[str] = []
    for item in query.split("&") if query else []:
        key, eq, value = item.partition("=")
        args.append(_unquote(key))
        if eq and value:
            args.append(_unquote(value))
    return _unquote(path), args


def open_output(path: str) -> int:
    """A write fd for ``path``: a FIFO, ``file://`` target, or ``""`` (``/dev/null``).

    A FIFO with no reader yet is opened read-write, so the open never blocks.

    Raises:
        errdefs.NotFound: a FIFO path that does not exist.
    """
    if not path:
        return os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    if path.startswith("file://"):
        target = _unquote(path.removeprefix("file://"))
        os.makedirs(os.path.dirname(target) or "/", exist_ok=True)
        return os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise errdefs.NotFound(f"stdio path {path!r} does not exist") from None
    if not stat.S_ISFIFO(st.st_mode):
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno != errno.ENXIO:
            raise
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    os.set_blocking(fd, True)
    return fd


class ProcessIO:
    """The stdio of one process (init or exec).

    Args:
        stdin, stdout, stderr: the client's paths or URIs (``""``: none).
        terminal: the process has a pty (the copy threads start in
            :meth:`attach_console`).
    """

    def __init__(
        self,
        reaper: Reaper,
        stdin: str,
        stdout: str,
        stderr: str,
        terminal: bool,
        *,
        namespace: str,
        container_id: str,
    ) -> None:
        self.reaper = reaper
        self.stdin, self.stdout, self.stderr, self.terminal = stdin, stdout, stderr, terminal
        self.namespace, self.container_id = namespace, container_id
        self.console: int | None = None
        self._runtime_fds: list[int] = []
        self._stdin_w: int | None = None
        self._stdin_lock = threading.Lock()
        self._copiers: list[threading.Thread] = []

    def open(self) -> tuple[int, int, int]:
        """The fds to give the runtime as 0-2 (closed by :meth:`release_runtime_fds`).

        Raises:
            errdefs.NotFound: a FIFO that does not exist.
            errdefs.Unavailable: a logging binary that did not become ready.
        """
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        self._runtime_fds.append(null)
        if self.terminal:
            return null, null, null
        stdin = null
        if self.stdin:
            r, w = os.pipe2(os.O_CLOEXEC)
            self._runtime_fds.append(r)
            self._stdin_w = w
            stdin = r
            self._start(self._copy_stdin_to_pipe)
        if self.stdout.startswith("binary://"):
            out, err = self._start_logger(self.stdout)
        else:
            out = open_output(self.stdout) if self.stdout else null
            self._runtime_fds.append(out)
            if self.stderr and self.stderr == self.stdout:
                err = out
            else:
                err = open_output(self.stderr) if self.stderr else null
                self._runtime_fds.append(err)
        return stdin, out, err

    def release_runtime_fds(self) -> None:
        """Close the shim's copies of the fds the runtime now holds."""
        for fd in dict.fromkeys(self._runtime_fds):
            os.close(fd)
        self._runtime_fds.clear()

    def _start(self, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        self._copiers.append(thread)

    def _start_logger(self, uri: str) -> tuple[int, int]:
        path, args = parse_binary_uri(uri)
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        wait_r, wait_w = os.pipe2(os.O_CLOEXEC)
        env = dict(os.environ)
        env["CONTAINER_ID"] = self.container_id
        env["CONTAINER_NAMESPACE"] = self.namespace
        null = self._runtime_fds[0]
        try:
            pid = self.reaper.spawn(
                [path, *args],
                stdin=null,
                stdout=null,
                stderr=null,
                env=env,
                extra=(out_r, err_r, wait_w),
            )
        except FileNotFoundError:
            for fd in (out_r, out_w, err_r, err_w, wait_r, wait_w):
                os.close(fd)
            raise errdefs.NotFound(f"logging binary {path!r} not found") from None
        threading.Thread(target=self._reap_logger, args=(pid, path), daemon=True).start()
        for fd in (out_r, err_r, wait_w):
            os.close(fd)
        self._runtime_fds += [out_w, err_w]
        try:
            ready, _, _ = select.select([wait_r], [], [], _LOGGER_READY_TIMEOUT)
            byte = os.read(wait_r, 1) if ready else b""
        finally:
            os.close(wait_r)
        if byte != b"\0":
            raise errdefs.Unavailable(f"logging binary {path!r} did not signal ready")
        return out_w, err_w

    def _reap_logger(self, pid: int, path: str) -> None:
        code = self.reaper.wait(pid)
        if code:
            log(f"logging binary {path} exited with status {code}")

    def _copy_stdin_to_pipe(self) -> None:
        try:
            src = os.open(self.stdin, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            log(f"stdin {self.stdin}: {exc}")
            self.close_stdin()
            return
        try:
            while True:
                data = os.read(src, 32768)
                if not data:
                    break
                with self._stdin_lock:
                    if self._stdin_w is None:
                        break
                    try:
                        os.write(self._stdin_w, data)
                    except OSError:
                        break
        finally:
            os.close(src)
        self.close_stdin()

    def close_stdin(self) -> None:
        """Give the process EOF on stdin (``close_io``)."""
        with self._stdin_lock:
            if self._stdin_w is not None:
                os.close(self._stdin_w)
                self._stdin_w = None

    def attach_console(self, master: int) -> None:
        """Start copying between the pty ``master`` and the client's FIFOs."""
        self.console = master
        out = open_output(self.stdout) if self.stdout else -1
        self._start(lambda: self._copy_console_out(master, out))
        if self.stdin:
            self._stdin_w = os.dup(master)
            self._start(self._copy_stdin_to_pipe)

    def _copy_console_out(self, master: int, out: int) -> None:
        try:
            while True:
                try:
                    data = os.read(master, 32768)
                except OSError:  # EIO: the last slave fd closed
                    break
                if not data:
                    break
                if out != -1:
                    with contextlib.suppress(OSError):
                        os.write(out, data)
        finally:
            if out != -1:
                os.close(out)

    def resize(self, width: int, height: int) -> None:
        """Set the pty's window size (no-op without a terminal)."""
        if self.console is not None:
            fcntl.ioctl(self.console, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    def wait_drained(self, timeout: float) -> None:
        """Wait (bounded) for the console output copy to reach EOF."""
        for thread in self._copiers[:1] if self.terminal else []:
            thread.join(timeout)

    def close(self) -> None:
        """Close everything the shim still holds for this process."""
        self.close_stdin()
        self.release_runtime_fds()
        if self.console is not None:
            with contextlib.suppress(OSError):
                os.close(self.console)
            self.console = None


class ConsoleSocket:
    """The ``--console-socket`` a runtime sends a pty master to."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(path)
        self._sock.listen(1)

    def receive(self, timeout: float = 10.0) -> int:
        """The master fd the runtime sent.

        Raises:
            errdefs.Unavailable: nothing arrived within ``timeout``.
        """
        self._sock.settimeout(timeout)
        try:
            conn, _ = self._sock.accept()
        except TimeoutError:
            raise errdefs.Unavailable("no console received from the OCI runtime") from None
        with conn:
            conn.settimeout(timeout)
            _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
        if not fds:
            raise errdefs.Unavailable("the OCI runtime sent no console fd")
        os.set_inheritable(fds[0], False)
        return fds[0]

    def close(self) -> None:
        self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
