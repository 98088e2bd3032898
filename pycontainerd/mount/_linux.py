"""Mounting and unmounting on Linux: ``mount(2)`` and ``umount2(2)`` through ctypes.

containerd's ``mount/mount_linux.go``. A :class:`~pycontainerd.api.types.Mount`
is applied in up to three system calls, as containerd does: the mount itself
(every flag but the propagation ones, the rest of the options as the data
string), a propagation change (``private``, ``rshared``, ...) if one was asked
for, and a read-only remount when a bind mount says ``ro`` (the kernel ignores
``MS_RDONLY`` on the initial bind).

The data string of ``mount(2)`` is at most one page. An overlay with many
layers easily exceeds it (128 lowerdirs under ``/var/lib/...`` do), so when the
options get close to a page the lowerdirs are rewritten relative to their
common parent directory and the mount runs with that directory as its working
directory. The daemon is multi-threaded and must never change its own working
directory: the mount runs on a short-lived thread that first unshares its
filesystem attributes (``unshare(CLONE_FS)``), so its ``chdir`` is its own.

Also here: ``with_temp_mount`` (containerd ``mount/temp.go``), used wherever a
snapshot's contents must be read or written without a container (a differ
applies a layer into it), the read-only rewrites of mounts, and the
``/proc/self/mountinfo`` lookups (containerd ``mount.Lookup``).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence

import attrs

from pycontainerd.api import errdefs
from pycontainerd.api.types import Mount

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_UNBINDABLE = 0x20000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_SHARED = 0x100000
MS_RELATIME = 0x200000
MS_STRICTATIME = 0x1000000

MNT_FORCE = 0x1
MNT_DETACH = 0x2
UMOUNT_NOFOLLOW = 0x8

CLONE_FS = 0x200

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
TEMP_MOUNT_PREFIX = "containerd-mount"

_PROPAGATION = MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE
_BUSY_RETRIES = 50
_BUSY_DELAY = 0.05

# option -> (clear, flag): containerd's ``parseMountOptions`` table.
_FLAGS: dict[str, tuple[bool, int]] = {
    "async": (True, MS_SYNCHRONOUS),
    "atime": (True, MS_NOATIME),
    "bind": (False, MS_BIND),
    "defaults": (False, 0),
    "dev": (True, MS_NODEV),
    "diratime": (True, MS_NODIRATIME),
    "dirsync": (False, MS_DIRSYNC),
    "exec": (True, MS_NOEXEC),
    "mand": (False, MS_MANDLOCK),
    "noatime": (False, MS_NOATIME),
    "nodev": (False, MS_NODEV),
    "nodiratime": (False, MS_NODIRATIME),
    "noexec": (False, MS_NOEXEC),
    "nomand": (True, MS_MANDLOCK),
    "norelatime": (True, MS_RELATIME),
    "nostrictatime": (True, MS_STRICTATIME),
    "nosuid": (False, MS_NOSUID),
    "rbind": (False, MS_BIND | MS_REC),
    "relatime": (False, MS_RELATIME),
    "remount": (False, MS_REMOUNT),
    "ro": (False, MS_RDONLY),
    "rw": (True, MS_RDONLY),
    "strictatime": (False, MS_STRICTATIME),
    "suid": (True, MS_NOSUID),
    "sync": (False, MS_SYNCHRONOUS),
    "private": (False, MS_PRIVATE),
    "rprivate": (False, MS_PRIVATE | MS_REC),
    "shared": (False, MS_SHARED),
    "rshared": (False, MS_SHARED | MS_REC),
    "slave": (False, MS_SLAVE),
    "rslave": (False, MS_SLAVE | MS_REC),
    "unbindable": (False, MS_UNBINDABLE),
    "runbindable": (False, MS_UNBINDABLE | MS_REC),
}

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]
_libc.mount.restype = ctypes.c_int
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.umount2.restype = ctypes.c_int
_libc.unshare.argtypes = [ctypes.c_int]
_libc.unshare.restype = ctypes.c_int


def _error(err: int, what: str) -> errdefs.ErrdefsError:
    """One errno turned into the errdefs class that says what went wrong."""
    text = f"{what}: {os.strerror(err)} (errno {errno.errorcode.get(err, err)})"
    if err in (errno.ENOENT, errno.ENOTDIR, errno.ENODEV, errno.ENXIO):
        return errdefs.NotFound(text)
    if err in (errno.EPERM, errno.EACCES):
        return errdefs.PermissionDenied(text)
    if err == errno.EBUSY:
        return errdefs.Unavailable(text)
    if err in (errno.EINVAL, errno.ENAMETOOLONG):
        return errdefs.InvalidArgument(text)
    if err == errno.EROFS:
        return errdefs.FailedPrecondition(text)
    return errdefs.Internal(text)


def _sys_mount(source: str, target: str, fstype: str, flags: int, data: str) -> int:
    """``mount(2)``; returns 0 or the errno."""
    rc = _libc.mount(
        os.fsencode(source) if source else None,
        os.fsencode(target),
        os.fsencode(fstype) if fstype else None,
        flags,
        os.fsencode(data) if data else None,
    )
    return ctypes.get_errno() if rc != 0 else 0


def parse_mount_options(options: Sequence[str]) -> tuple[int, str]:
    """Split mount options into ``mount(2)`` flags and the data string.

    Args:
        options: containerd mount options, e.g. ``["ro", "rbind"]`` or
            ``["index=off", "lowerdir=/a:/b"]``.

    Returns:
        ``(flags, data)``: known flag words folded into the flags (the later
        of ``ro``/``rw`` wins), everything else joined with ``","``.
    """
    flags = 0
    data: list[str] = []
    for option in options:
        known = _FLAGS.get(option)
        if known is None:
            data.append(option)
            continue
        clear, flag = known
        if clear:
            flags &= ~flag
        else:
            flags |= flag
    return flags, ",".join(data)


def _options_size(options: Sequence[str]) -> int:
    return sum(len(o) for o in options)  # containerd optionsSize: no separators


def compact_lowerdir_option(options: Sequence[str]) -> tuple[str, list[str]]:
    """Rewrite an overlay's ``lowerdir=`` relative to the lowerdirs' common parent.

    containerd's ``compactLowerdirOption``. The common parent is compared by
    path components (containerd takes the directory above the longest common
    string prefix, which comes to the same for ``.../snapshots/1/fs`` and
    ``.../snapshots/12/fs``: ``.../snapshots``).

    Args:
        options: the overlay's options.

    Returns:
        ``(chdir, options)``: the directory to mount from and the rewritten
        options (``lowerdir=`` moved last), or ``("", options)`` unchanged when
        there is nothing to compact.
    """
    index = next((i for i, o in enumerate(options) if o.startswith("lowerdir=")), -1)
    if index < 0:
        return "", list(options)
    dirs = options[index].removeprefix("lowerdir=").split(":")
    if len(dirs) == 1:
        return "", list(options)
    if not all(os.path.isabs(d) for d in dirs):
        return "", list(options)
    common = os.path.commonpath(dirs)
    if common == "/":
        return "", list(options)
    common += "/"
    if any(len(d) <= len(common) for d in dirs):
        return "", list(options)
    relative = [d[len(common) :] for d in dirs]
    rest = [o for i, o in enumerate(options) if i != index]
    return common, [*rest, "lowerdir=" + ":".join(relative)]


def _mount_at(chdir: str, source: str, target: str, fstype: str, flags: int, data: str) -> int:
    """``mount(2)`` from the working directory ``chdir`` without moving the process."""
    if not chdir:
        return _sys_mount(source, target, fstype, flags, data)
    result: list[int] = []

    def run() -> None:
        # CLONE_FS gives this thread its own cwd; the thread ends right after.
        if _libc.unshare(CLONE_FS) != 0:
            result.append(ctypes.get_errno())
            return
        try:
            os.chdir(chdir)
        except OSError as exc:
            result.append(exc.errno or errno.EIO)
            return
        result.append(_sys_mount(source, target, fstype, flags, data))

    thread = threading.Thread(target=run, name="pycontainerd-mount-at", daemon=True)
    thread.start()
    thread.join()
    return result[0] if result else errno.EIO


def mount(m: Mount, target: str | os.PathLike[str]) -> None:
    """Mount ``m`` on ``target`` (containerd ``Mount.Mount``).

    Args:
        m: type, source and options; ``m.target`` is ignored.
        target: an existing directory (or file, for a file bind mount).

    Raises:
        errdefs.NotFound: the source, target or filesystem type does not exist.
        errdefs.PermissionDenied: not allowed (not root, or a user namespace).
        errdefs.InvalidArgument: the kernel refused the options, or they
            exceed a page even after compaction.
        errdefs.Unavailable: the target is busy.
        errdefs.Internal: any other ``mount(2)`` failure.
    """
    dest = os.fspath(target)
    chdir, options = "", list(m.options)
    if m.type == "overlay" and _options_size(options) >= PAGE_SIZE - 512:
        chdir, options = compact_lowerdir_option(options)
    flags, data = parse_mount_options(options)
    what = f"mount {m.type} {m.source!r} on {dest!r} (options {','.join(m.options)!r})"
    if len(data) >= PAGE_SIZE:
        raise errdefs.InvalidArgument(
            f"{what}: mount options are {len(data)} bytes, over the {PAGE_SIZE}-byte page"
        )
    oflags = flags & ~_PROPAGATION
    if not flags & MS_REMOUNT or data:
        err = _mount_at(chdir, m.source, dest, m.type, oflags, data)
        if err:
            raise _error(err, what)
    if flags & _PROPAGATION:
        pflags = _PROPAGATION | MS_REC | MS_SILENT
        err = _sys_mount("", dest, "", flags & pflags, "")
        if err:
            raise _error(err, f"{what}: changing propagation")
    if oflags & (MS_BIND | MS_RDONLY) == MS_BIND | MS_RDONLY:
        err = _sys_mount("", dest, "", oflags | MS_REMOUNT, "")
        if err:
            raise _error(err, f"{what}: remounting read-only")


def mount_all(mounts: Sequence[Mount], target: str | os.PathLike[str]) -> None:
    """Mount every mount on ``target`` in order (containerd ``mount.All``).

    Raises:
        errdefs.ErrdefsError: as :func:`mount`; mounts made before the failing
            one stay mounted (unmount with :func:`unmount_all`).
    """
    for m in mounts:
        mount(m, target)


def _umount(target: str, flags: int) -> int:
    path = os.fsencode(target)
    for _ in range(_BUSY_RETRIES):
        if _libc.umount2(path, flags) == 0:
            return 0
        err = ctypes.get_errno()
        if err != errno.EBUSY:
            return err
        time.sleep(_BUSY_DELAY)
    return errno.EBUSY


def unmount(target: str | os.PathLike[str], flags: int = 0) -> None:
    """Unmount the top mount of ``target`` (containerd ``mount.Unmount``).

    A target that is not a mount point is not an error; a busy one is retried
    for a few seconds.

    Args:
        target: the mount point.
        flags: ``umount2(2)`` flags (:data:`MNT_DETACH`, ...).

    Raises:
        errdefs.Unavailable: still busy after the retries.
        errdefs.ErrdefsError: any other failure, mapped from its errno.
    """
    dest = os.fspath(target)
    err = _umount(dest, flags)
    if err and err != errno.EINVAL:
        raise _error(err, f"unmount {dest!r}")


def unmount_all(target: str | os.PathLike[str], flags: int = 0) -> None:
    """Unmount every mount stacked on ``target`` (containerd ``mount.UnmountAll``).

    Repeats until the kernel answers ``EINVAL`` (no longer a mount point). A
    target that does not exist is already unmounted.

    Raises:
        errdefs.ErrdefsError: as :func:`unmount`.
    """
    dest = os.fspath(target)
    if not dest or not os.path.lexists(dest):
        return
    while True:
        err = _umount(dest, flags)
        if err == errno.EINVAL:
            return
        if err:
            raise _error(err, f"unmount {dest!r}")


def is_mountpoint(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is listed as a mount point in ``/proc/self/mountinfo``."""
    want = os.path.realpath(os.fspath(path))
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            point = line.split(" ", 5)[4]
            if _unescape(point) == want:
                return True
    return False


def lookup(path: str | os.PathLike[str]) -> tuple[str, str, str]:
    """The mount holding ``path`` (containerd ``mount.Lookup``).

    Returns:
        ``(mountpoint, fstype, source)`` of the longest mount point prefixing
        the resolved path.

    Raises:
        errdefs.NotFound: no mount covers the path (cannot happen for an
            existing path).
    """
    want = os.path.realpath(os.fspath(path))
    best: tuple[str, str, str] | None = None
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            fields = line.split()
            point = _unescape(fields[4])
            sep = fields.index("-")
            fstype, source = fields[sep + 1], _unescape(fields[sep + 2])
            inside = want == point or want.startswith(point.rstrip("/") + "/")
            if inside and (best is None or len(point) >= len(best[0])):
                best = (point, fstype, source)
    if best is None:
        raise errdefs.NotFound(f"no mount holds {want!r}")
    return best


def _unescape(text: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as ``\\ooo``."""
    if "\\" not in text:
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 4 <= len(text) and text[i + 1 : i + 4].isdigit():
            out.append(chr(int(text[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


# -- temporary and read-only mounts (containerd mount/temp.go) ---------------
def _readonly_overlay(options: Sequence[str]) -> list[str]:
    """Drop ``upperdir``/``workdir``; the upper layer becomes the top lowerdir."""
    out: list[str] = []
    upper = ""
    for option in options:
        if option.startswith("upperdir="):
            upper = option.removeprefix("upperdir=")
        elif not option.startswith("workdir="):
            out.append(option)
    if upper:
        out = [
            "lowerdir=" + upper + ":" + o.removeprefix("lowerdir=")
            if o.startswith("lowerdir=")
            else o
            for o in out
        ]
    return out


def read_only(m: Mount) -> Mount:
    """The same mount, read-only (containerd ``readonlyMounts`` for one mount).

    An overlay loses its upper and work directories (the upper directory is
    stacked on top of the lowerdirs instead); any other mount drops ``rw`` and
    ``ro`` and gets one ``ro`` at the end.
    """
    if m.type == "overlay":
        return attrs.evolve(m, options=_readonly_overlay(m.options))
    options = [o for o in m.options if o not in ("rw", "ro")]
    return attrs.evolve(m, options=[*options, "ro"])


def read_only_mounts(mounts: Sequence[Mount]) -> list[Mount]:
    """:func:`read_only` of every mount."""
    return [read_only(m) for m in mounts]


@contextlib.contextmanager
def with_temp_mount(
    mounts: Sequence[Mount], *, temp_dir: str | os.PathLike[str] | None = None
) -> Iterator[str]:
    """Mount ``mounts`` on a fresh temporary directory for the ``with`` block.

    containerd ``mount.WithTempMount``: the directory is created under
    ``temp_dir`` (default: the system temporary directory), everything is
    unmounted when the block ends, and the directory is removed only once
    nothing is mounted on it any more.

    Args:
        mounts: mounted in order (:func:`mount_all`).
        temp_dir: where to create the mount point.

    Yields:
        The mount point.

    Raises:
        errdefs.ErrdefsError: mounting or unmounting failed; a failure to
            unmount after the block is raised unless the block itself raised.
    """
    root = tempfile.mkdtemp(prefix=TEMP_MOUNT_PREFIX, dir=temp_dir)
    try:
        mount_all(mounts, root)
    except BaseException:
        unmount_all(root)
        os.rmdir(root)
        raise
    failed = True
    try:
        yield root
        failed = False
    finally:
        try:
            unmount_all(root)
        except Exception:
            if not failed:
                raise
        else:
            os.rmdir(root)


@contextlib.contextmanager
def with_readonly_temp_mount(
    mounts: Sequence[Mount], *, temp_dir: str | os.PathLike[str] | None = None
) -> Iterator[str]:
    """:func:`with_temp_mount` of :func:`read_only_mounts` (nothing can be changed)."""
    with with_temp_mount(read_only_mounts(mounts), temp_dir=temp_dir) as root:
        yield root
