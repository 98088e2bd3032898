"""gzip inflated by ISA-L in a child process, for large layers.

ISA-L's inflate holds the GIL, so on a thread it would stall the writer (see
``_tarstream``); in a child process it runs on another core for real, the way
containerd hands large layers to ``unpigz``/``igzip`` when they are installed::

    source --feeder thread--> [python -I -S: isal igzip] --pipe--> read()

The child is the same interpreter with only ISA-L importable; a corrupt stream
makes it exit non-zero with the decoder's message, which :meth:`GunzipProcess.read`
raises as :class:`~pycontainerd.api.errdefs.DataLoss` once the output ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
import threading
from typing import Any

from pycontainerd.api import errdefs

from ._readable import Readable

_CHUNK = 1 << 20
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)

_CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
from isal import igzip
out = sys.stdout.buffer.raw
try:
    with igzip.IGzipFile(fileobj=sys.stdin.buffer, mode="rb") as gz:
        while chunk := gz.read(1 << 20):
            view = memoryview(chunk)
            while view:
                view = view[out.write(view):]
except BrokenPipeError:
    sys.exit(3)
except Exception as exc:
    sys.stderr.write(f"{type(exc).__name__}: {exc}")
    sys.exit(2)
"""


def _isal_path() -> str | None:
    try:
        import isal
    except ImportError:  # pragma: no cover - isal is a declared dependency
        return None
    return os.path.dirname(os.path.dirname(isal.__file__ or ""))


def _grow_pipe(fd: int) -> None:
    with contextlib.suppress(OSError):  # capped by /proc/sys/fs/pipe-max-size
        fcntl.fcntl(fd, _F_SETPIPE_SZ, _CHUNK)


class GunzipProcess:
    """The inflated bytes of a gzip stream, produced by a child process.

    Reads release the GIL. :meth:`close` stops the child and the feeder thread;
    it never closes ``source``.
    """

    releases_gil = True
    compression = "gzip"

    def __init__(self, source: Readable) -> None:
        self._eof = True  # until the child runs: a failed start reads as closed
        path = _isal_path()
        if path is None:
            raise errdefs.Unavailable("isal is not installed")
        self._source = source
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _CHILD, path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._stdin = self._proc.stdin
        self._stdout = self._proc.stdout.fileno()
        _grow_pipe(self._stdin.fileno())
        _grow_pipe(self._stdout)
        self._feed_error: BaseException | None = None
        self._eof = False
        self._feeder = threading.Thread(target=self._feed, name="gunzip-feeder", daemon=True)
        self._feeder.start()

    def _feed(self) -> None:
        fd = self._stdin.fileno()
        try:
            while chunk := self._source.read(_CHUNK):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
        except BrokenPipeError:
            pass  # the child stopped reading: its exit status tells why
        except BaseException as exc:  # handed to the reader
            self._feed_error = exc
        finally:
            with contextlib.suppress(OSError):
                self._stdin.close()

    def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` inflated bytes; ``b""`` at the end.

        Raises:
            errdefs.DataLoss: the gzip stream is corrupt or truncated.
        """
        if self._eof:
            return b""
        data = os.read(self._stdout, size if size > 0 else _CHUNK)
        if data:
            return data
        self._eof = True
        self._feeder.join()
        status = self._proc.wait()
        if self._feed_error is not None:
            raise self._feed_error
        if status != 0:
            assert self._proc.stderr is not None
            message = self._proc.stderr.read().decode("utf-8", "replace").strip()
            raise errdefs.DataLoss(f"corrupt gzip layer stream: {message or status}")
        return b""

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._eof = True
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._feeder.join()
        for stream in (self._proc.stdout, self._proc.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> GunzipProcess:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
