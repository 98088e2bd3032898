"""The native snapshotter: full copies, no special filesystem (containerd ``snapshots/native``).

Layout under ``root``::

    <root>/metadata.db              the metastore
    <root>/snapshots/<id>           the snapshot's whole tree
    <root>/snapshots/new-XXXXXX     a tree being copied, renamed to <id>
    <root>/snapshots/rm-<id>        a removed tree, deleted right after

Preparing an active snapshot copies its parent's whole tree (:func:`copy_dir`);
a view of a parent copies nothing and binds the parent read-only. Every mount
is a single ``bind``, so this works on any filesystem and in any container,
at the cost of disk space and time proportional to the image.

:func:`copy_dir` is containerd's ``fs.CopyDir`` (continuity): the copy must
keep everything a container image can hold: ownership, modes (setuid
included), extended attributes, hard links, symlinks, devices, fifos, and
timestamps.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from pycontainerd.api.types import Mount

from ._common import LocalSnapshotter, disk_usage, remove_tree
from ._interfaces import Kind, Usage
from ._metastore import Snapshot

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


class NativeSnapshotter(LocalSnapshotter):
    """Snapshots as plain directory copies under ``root``.

    Args:
        root: the snapshotter's directory (containerd's
            ``<root>/io.containerd.snapshotter.v1.native``), created 0700.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        super().__init__(root)
        (self.root / "snapshots").mkdir(mode=0o700, exist_ok=True)

    def snapshot_dir(self, snapshot_id: str) -> Path:
        """``<root>/snapshots/<id>``."""
        return self.root / "snapshots" / snapshot_id

    def _active_usage(self, snapshot_id: str) -> Usage:
        return disk_usage(self.snapshot_dir(snapshot_id))

    def _mounts(self, s: Snapshot) -> list[Mount]:
        flag = "ro" if s.kind is Kind.VIEW else "rw"
        if not s.parent_ids or s.kind is Kind.ACTIVE:
            source = self.snapshot_dir(s.id)
        else:
            source = self.snapshot_dir(s.parent_ids[0])
        return [Mount(type="bind", source=str(source), options=[flag, "rbind"])]

    def _create(
        self, kind: Kind, key: str, parent: str, labels: Mapping[str, str] | None
    ) -> list[Mount]:
        building: Path | None = None
        try:
            with self._ms.transaction(writable=True) as st:
                if kind is Kind.ACTIVE or not parent:
                    building = Path(tempfile.mkdtemp(prefix="new-", dir=self.root / "snapshots"))
                    os.chmod(building, 0o755)
                s = st.create_snapshot(kind, key, parent, labels)
                if building is not None:
                    if s.parent_ids:
                        copy_dir(building, self.snapshot_dir(s.parent_ids[0]))
                    os.rename(building, self.snapshot_dir(s.id))
                    building = None
                return self._mounts(s)
        finally:
            if building is not None:
                remove_tree(building)

    def remove(self, key: str) -> None:
        """See :meth:`Snapshotter.remove`; the tree is deleted before this returns.

        The tree is renamed aside inside the transaction (and renamed back if
        the transaction fails), then deleted once the removal is committed.
        """
        renamed: Path | None = None
        path: Path | None = None
        try:
            with self._ms.transaction(writable=True) as st:
                snapshot_id, _ = st.remove(key)
                path = self.snapshot_dir(snapshot_id)
                aside = self.root / "snapshots" / f"rm-{snapshot_id}"
                if path.exists():
                    os.rename(path, aside)
                    renamed = aside
        except BaseException:
            if renamed is not None and path is not None:
                os.rename(renamed, path)
            raise
        if renamed is not None:
            remove_tree(renamed)

    def cleanup(self) -> None:
        """Delete trees no snapshot owns any more (left by a crash mid-copy or mid-remove)."""
        with self._ms.transaction(writable=False) as st:
            removals = self._orphans(st, self.root / "snapshots")
        for path in removals:
            remove_tree(path)
