"""What the daemon asks of its host: private directories, the root lock,
sd_notify, file limits."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import resource
import socket
import stat
from pathlib import Path

log = logging.getLogger("pycontainerd.daemon")

DIR_MODE = 0o711
"""The root and state directories' mode, as containerd's: only root lists or
creates in them; others may pass through to what is made readable below."""


def private_dir(path: Path, mode: int = DIR_MODE) -> None:
    """Create ``path`` (and missing parents) and give it ``mode``, also when it
    already existed with a looser one (an install from before this default).

    Raises:
        OSError: it cannot be created or its mode cannot be set.
    """
    path.mkdir(mode=mode, parents=True, exist_ok=True)
    if stat.S_IMODE(path.stat().st_mode) != mode:
        log.info("tightening %s to %o", path, mode)
        os.chmod(path, mode)


class RootLocked(Exception):
    """Another daemon holds the root directory."""


class RootLock:
    """An exclusive ``flock`` on ``<root>/pycontainerd.lock``.

    The kernel drops a ``flock`` when its holder dies, so a SIGKILLed daemon
    never blocks its successor. The file holds the holder's pid for the
    message a second daemon prints.
    """

    def __init__(self, root: Path) -> None:
        self.path = root / "pycontainerd.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RootLocked(
                f"another pycontainerd (pid {holder}) holds {self.path.parent}; "
                "stop it or use another --root"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def address_in_use(address: str) -> bool:
    """Whether something answers on the Unix socket ``address``."""
    if not os.path.exists(address):
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(address)
        except OSError:
            return False
    return True


def sd_notify(state: str) -> bool:
    """Send ``state`` (``READY=1``, ``STOPPING=1``) to systemd, if it asked for it."""
    target = os.environ.get("NOTIFY_SOCKET")
    if not target:
        return False
    if target.startswith("@"):
        target = "\0" + target[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(target)
            sock.sendall(state.encode())
        except OSError as exc:
            log.warning("sd_notify %s failed: %s", state, exc)
            return False
    return True


MMAP_THRESHOLD = 1 << 20
"""Bytes from which an allocation gets a mapping of its own (:func:`return_large_buffers`)."""
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number


def return_large_buffers() -> bool:
    """Have glibc map every allocation of :data:`MMAP_THRESHOLD` bytes or more
    on its own, so that freeing it gives the memory back to the system.

    By default glibc raises that threshold to the size of the largest block
    freed (up to 32 MiB): after the first 16 MiB request, each later one is
    carved from the heap (or a worker thread's arena) and kept there once
    freed, and the daemon's RSS grows by the high-water mark of concurrent
    large requests and never comes down. Setting the threshold also turns
    off that adjustment. Returns whether glibc took it (not glibc: False).
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError):
        return False


def raise_nofile_limit() -> int:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return soft
