"""A task's stdio, as containerd's ``cio`` package: FIFOs, log files, nothing.

    task = container.new_task(cio.stdio())            # this process's stdio
    task = container.new_task(cio.log_file("/var/log/x.log"))
    task = container.new_task(cio.null())
    task = container.new_task(cio.terminal())         # a pty: stdin and stdout only
    out = io.BytesIO()
    task = container.new_task(cio.with_streams(b"input", out, out))

Each helper is a :data:`Creator`: called with the container (or exec) id, it
makes an :class:`IO` whose :attr:`IO.config` holds the ``stdin``, ``stdout``,
``stderr`` and ``terminal`` fields of ``tasks.create`` / ``tasks.exec``. FIFOs
are made in a fresh directory under :data:`FIFO_DIR`; the shim hands them to
the container (no copy loop in the shim), and threads here copy between them
and the streams. :meth:`IO.close` (called by ``Task.delete``) stops and joins
the threads and removes the FIFOs and their directory.
"""

from __future__ import annotations

import contextlib
import io
import os
import select
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable
from typing import BinaryIO

import attrs

FIFO_DIR = "/run/pycontainerd/fifo"
_CHUNK = 32768


@attrs.frozen
class Config:
    """The stdio fields of ``tasks.create`` and ``tasks.exec``."""

    stdin: str = ""
    stdout: str = ""
    stderr: str = ""
    terminal: bool = False

    def fields(self) -> dict[str, str | bool]:
        """As request fields."""
        return {
            "stdin": self.stdin,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "terminal": self.terminal,
        }


class IO:
    """One process's stdio (containerd's ``cio.IO``).

    Args:
        config: the fields handed to the daemon.
        directory: the FIFO directory to remove on :meth:`close` (or ``None``).
    """

    def __init__(self, config: Config, directory: str | None = None) -> None:
        self.config = config
        self.directory = directory
        self._outputs: list[threading.Thread] = []
        self._inputs: list[threading.Thread] = []
        self._stop_r, self._stop_w = os.pipe2(os.O_CLOEXEC)
        self._closed = False

    def _output(self, path: str, dest: BinaryIO) -> None:
        # Opened here, non-blocking, so the shim finds a reader and never blocks;
        # poll() reports HUP only once a writer has come and gone.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        thread = threading.Thread(target=self._copy_out, args=(fd, dest), daemon=True)
        thread.start()
        self._outputs.append(thread)

    def _input(self, path: str, src: bytes | BinaryIO) -> None:
        thread = threading.Thread(target=self._copy_in, args=(path, src), daemon=True)
        thread.start()
        self._inputs.append(thread)

    def _copy_out(self, fd: int, dest: BinaryIO) -> None:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poller.register(self._stop_r, select.POLLIN)
        try:
            while True:
                events = dict(poller.poll())
                data = b""
                if fd in events:
                    try:
                        data = os.read(fd, _CHUNK)
                    except BlockingIOError:
                        continue
                    if data:
                        dest.write(data)
                        dest.flush()
                        continue
                    if events[fd] & select.POLLHUP:
                        return  # every writer has gone: EOF
                if self._stop_r in events:
                    return
        except OSError:
            return
        finally:
            os.close(fd)

    def _copy_in(self, path: str, src: bytes | BinaryIO) -> None:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)  # blocks until the shim reads
        except OSError:
            return
        try:
            if self._closed:
                return
            if isinstance(src, bytes):
                _write_all(fd, src)
                return
            try:
                src_fd = src.fileno()
            except (OSError, io.UnsupportedOperation):
                _write_all(fd, src.read())
                return
            while True:
                ready, _, _ = select.select([src_fd, self._stop_r], [], [])
                if self._stop_r in ready:
                    return
                data = os.read(src_fd, _CHUNK)
                if not data:
                    return
                _write_all(fd, data)
        except OSError:
            return
        finally:
            os.close(fd)

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the outputs to reach EOF (the process and its children exited)."""
        for thread in self._outputs:
            thread.join(timeout)

    def cancel(self) -> None:
        """Stop the copy threads (without waiting for EOF)."""
        with contextlib.suppress(OSError):
            os.write(self._stop_w, b"x")

    def close(self) -> None:
        """Stop and join the threads, remove the FIFOs (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self.cancel()
        if self.directory is not None:
            # an input thread still blocked opening its FIFO: give it a reader
            for name in os.listdir(self.directory):
                with contextlib.suppress(OSError):
                    os.close(os.open(os.path.join(self.directory, name), os.O_RDWR | os.O_NONBLOCK))
        for thread in [*self._outputs, *self._inputs]:
            thread.join(5.0)
        os.close(self._stop_r)
        os.close(self._stop_w)
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)


Creator = Callable[[str], IO]
"""``(id) -> IO``: what ``Container.new_task`` and ``Task.exec`` take."""


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def fifo_dir(base: str = FIFO_DIR) -> str:
    """A new private directory for one process's FIFOs, under ``base``."""
    try:
        os.makedirs(base, mode=0o700, exist_ok=True)
    except OSError:
        base = tempfile.gettempdir()
    return tempfile.mkdtemp(prefix="", dir=base)


def _fifos(id: str, names: tuple[str, ...], terminal: bool, base: str) -> tuple[str, Config]:
    directory = fifo_dir(base)
    paths = dict.fromkeys(("stdin", "stdout", "stderr"), "")
    for name in names:
        paths[name] = os.path.join(directory, f"{id}-{name}")
        os.mkfifo(paths[name], 0o600)
    return directory, Config(paths["stdin"], paths["stdout"], paths["stderr"], terminal)


def with_streams(
    stdin: bytes | BinaryIO | None = None,
    stdout: BinaryIO | None = None,
    stderr: BinaryIO | None = None,
    *,
    terminal: bool = False,
    fifo_dir: str = FIFO_DIR,
) -> Creator:
    """FIFOs copied from ``stdin`` (bytes, or a binary stream) and into ``stdout``/``stderr``.

    A stream given as ``None`` gets no FIFO (``/dev/null`` in the container).
    With ``terminal``, the pty's output all goes to ``stdout`` (there is no stderr).
    ``fifo_dir``: where the FIFOs' directory is made (containerd's ``WithFIFODir``).
    """
    wanted = {"stdin": stdin, "stdout": stdout, "stderr": None if terminal else stderr}
    names = tuple(name for name, stream in wanted.items() if stream is not None)

    def create(id: str) -> IO:
        directory, config = _fifos(id, names, terminal, fifo_dir)
        result = IO(config, directory)
        try:
            if stdout is not None:
                result._output(config.stdout, stdout)
            if stderr is not None and config.stderr:
                result._output(config.stderr, stderr)
            if stdin is not None:
                result._input(config.stdin, stdin)
        except BaseException:
            result.close()
            raise
        return result

    return create


def attach(
    config: Config,
    stdin: BinaryIO | None = None,
    stdout: BinaryIO | None = None,
    stderr: BinaryIO | None = None,
) -> Creator:
    """The FIFOs of a running process (``config``, from ``tasks.get``) reopened here
    (``cio.NewAttach``); :meth:`IO.close` leaves them for their owner to remove."""

    def create(id: str) -> IO:
        result = IO(config)
        try:
            for path, stream in ((config.stdout, stdout), (config.stderr, stderr)):
                if stream is not None and path and not path.startswith(("file://", "binary://")):
                    result._output(path, stream)
            if stdin is not None and config.stdin:
                result._input(config.stdin, stdin)
        except BaseException:
            result.close()
            raise
        return result

    return create


def stdio(*, stdin: bool = True, fifo_dir: str = FIFO_DIR) -> Creator:
    """This process's stdin, stdout and stderr (``cio.WithStdio``)."""
    return with_streams(
        sys.stdin.buffer if stdin else None,
        sys.stdout.buffer,
        sys.stderr.buffer,
        fifo_dir=fifo_dir,
    )


def terminal(*, stdin: bool = True, fifo_dir: str = FIFO_DIR) -> Creator:
    """This process's stdin and stdout through the task's pty (``cio.WithTerminal``)."""
    return with_streams(
        sys.stdin.buffer if stdin else None, sys.stdout.buffer, terminal=True, fifo_dir=fifo_dir
    )


def log_file(path: str | os.PathLike[str]) -> Creator:
    """stdout and stderr appended to ``path`` by the shim (a ``file://`` URI, no FIFOs)."""
    uri = "file://" + os.path.abspath(os.fspath(path))

    def create(id: str) -> IO:
        return IO(Config(stdout=uri, stderr=uri))

    return create


def null() -> Creator:
    """No stdio at all (``cio.NullIO``): the container's fds 0-2 are ``/dev/null``."""

    def create(id: str) -> IO:
        return IO(Config())

    return create
