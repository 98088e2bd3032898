"""Filesystem helpers of the snapshotters (containerd's ``continuity/fs``).

``copy_dir`` is ``fs.CopyDir``: the native snapshotter builds every new active
snapshot as a full copy of its parent, so the copy must keep everything a
container image can hold: ownership, modes (setuid included), extended
attributes, hard links, symlinks, devices, fifos, and timestamps.
``disk_usage`` is ``fs.DiskUsage``: allocated blocks of distinct inodes.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Callable

from ._interfaces import Usage

XattrErrorHandler = Callable[[str, str, str, OSError], None]


def _ignore_security_xattrs(dst: str, src: str, key: str, err: OSError) -> None:
    """The native snapshotter's handler: ``security.*`` often cannot be set (buildkit#1189)."""
    if key.startswith("security.") or err.errno in (errno.ENOTSUP, errno.EPERM):
        return
    raise err


def _copy_xattrs(dst: str, src: str, on_error: XattrErrorHandler) -> None:
    try:
        keys = os.listxattr(src, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.ENODATA):
            return
        raise
    for key in keys:
        try:
            value = os.getxattr(src, key, follow_symlinks=False)
            os.setxattr(dst, key, value, follow_symlinks=False)
        except OSError as exc:
            on_error(dst, src, key, exc)


def _copy_file_info(st: os.stat_result, dst: str, src: str, on_error: XattrErrorHandler) -> None:
    """Owner, then mode (chown clears setuid), then xattrs (chown clears
    ``security.capability``), then times."""
    os.lchown(dst, st.st_uid, st.st_gid)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(dst, stat.S_IMODE(st.st_mode))
    _copy_xattrs(dst, src, on_error)
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _copy_file(src: str, dst: str) -> None:
    with open(src, "rb") as fsrc, open(dst, "wb") as fdst:
        size = os.fstat(fsrc.fileno()).st_size
        copied = 0
        try:
            while copied < size:
                n = os.copy_file_range(fsrc.fileno(), fdst.fileno(), size - copied)
                if n == 0:
                    break
                copied += n
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise
            fsrc.seek(copied)
            fdst.seek(copied)
            shutil.copyfileobj(fsrc, fdst)


def copy_dir(
    dst: str | os.PathLike[str],
    src: str | os.PathLike[str],
    *,
    on_xattr_error: XattrErrorHandler = _ignore_security_xattrs,
) -> None:
    """Copy the tree ``src`` into the directory ``dst`` (created if missing).

    Hard links inside ``src`` stay hard links in ``dst``; sockets are copied
    as the special files they are (``mknod``); a directory's times are set
    after its entries are written, so they survive.

    Args:
        dst: the destination directory.
        src: the source directory.
        on_xattr_error: called for an extended attribute that cannot be
            copied; re-raise to fail the copy. The default ignores
            ``security.*`` and unsupported attributes.

    Raises:
        OSError: reading ``src`` or writing ``dst`` failed.
        NotADirectoryError: ``src`` or an existing ``dst`` is not a directory.
    """
    inodes: dict[tuple[int, int], str] = {}
    _copy_directory(os.fspath(dst), os.fspath(src), inodes, on_xattr_error)


def _copy_directory(
    dst: str, src: str, inodes: dict[tuple[int, int], str], on_error: XattrErrorHandler
) -> None:
    st = os.lstat(src)
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, "copy source is not a directory", src)
    try:
        os.mkdir(dst, stat.S_IMODE(st.st_mode))
    except FileExistsError:
        if not stat.S_ISDIR(os.lstat(dst).st_mode):
            raise NotADirectoryError(
                errno.ENOTDIR, "copy destination is not a directory", dst
            ) from None
    with os.scandir(src) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        source = entry.path
        target = os.path.join(dst, entry.name)
        est = entry.stat(follow_symlinks=False)
        mode = est.st_mode
        if stat.S_ISDIR(mode):
            _copy_directory(target, source, inodes, on_error)
            continue
        if stat.S_ISREG(mode):
            if est.st_nlink > 1:
                ino = (est.st_dev, est.st_ino)
                first = inodes.get(ino)
                if first is not None:
                    os.link(first, target)
                    continue
                inodes[ino] = target
            _copy_file(source, target)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(source), target)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            os.mknod(target, mode, est.st_rdev)
        else:
            continue
        _copy_file_info(est, target, source, on_error)
    _copy_file_info(st, dst, src, on_error)


def disk_usage(*roots: str | os.PathLike[str]) -> Usage:
    """Allocated bytes and distinct inodes under ``roots`` (containerd ``fs.DiskUsage``).

    Each inode counts once (hard links), its size is ``st_blocks * 512``; the
    roots themselves are included.

    Raises:
        OSError: a root cannot be read (entries vanishing meanwhile are skipped).
    """
    seen: set[tuple[int, int]] = set()
    size = 0

    def visit(st: os.stat_result) -> None:
        nonlocal size
        key = (st.st_dev, st.st_ino)
        if key not in seen:
            seen.add(key)
            size += st.st_blocks * 512

    def walk(path: str) -> None:
        try:
            it = os.scandir(path)
        except FileNotFoundError:
            return
        with it:
            for entry in it:
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                visit(st)
                if stat.S_ISDIR(st.st_mode):
                    walk(entry.path)

    for root in roots:
        visit(os.lstat(root))
        walk(os.fspath(root))
    return Usage(size=size, inodes=len(seen))
