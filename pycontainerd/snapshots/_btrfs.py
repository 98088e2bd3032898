"""The btrfs snapshotter: subvolumes and copy-on-write snapshots (containerd ``snapshots/btrfs``).

Layout under ``root``, which must be on a btrfs filesystem::

    <root>/metadata.db              the metastore
    <root>/active/<id>              writable subvolume of an active snapshot
    <root>/view/<id>                read-only snapshot (or empty subvolume) of a view
    <root>/snapshots/<id>           read-only snapshot of a committed snapshot
    <root>/<kind>/rm-<id>           a removed subvolume, deleted right after

Preparing on a parent is one ``BTRFS_IOC_SNAP_CREATE_V2`` (constant time, no
copy); committing snapshots the active subvolume read-only into
``snapshots/<id>`` and deletes the active one. Mounts name the filesystem's
device and the subvolume id: ``{type: btrfs, source: /dev/..., options:
[subvolid=<n>, rw|ro]}``. The subvolume ioctls are issued directly (the
``btrfs`` command line does the same).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path

from pycontainerd.api import errdefs
from pycontainerd.api.types import Mount
from pycontainerd.mount import lookup

from ._common import LocalSnapshotter, disk_usage, remove_tree
from ._interfaces import Kind, Usage
from ._metastore import Snapshot

_MAGIC = 0x94
_ARGS_SIZE = 4096  # every struct below is one page


def _iow(nr: int) -> int:
    return (1 << 30) | (_ARGS_SIZE << 16) | (_MAGIC << 8) | nr


def _iowr(nr: int) -> int:
    return (3 << 30) | (_ARGS_SIZE << 16) | (_MAGIC << 8) | nr


BTRFS_IOC_SUBVOL_CREATE = _iow(14)  # struct btrfs_ioctl_vol_args {s64 fd; char name[4088]}
BTRFS_IOC_SNAP_DESTROY = _iow(15)
BTRFS_IOC_INO_LOOKUP = _iowr(18)  # {u64 treeid; u64 objectid; char name[4080]}
BTRFS_IOC_SNAP_CREATE_V2 = _iow(23)  # {s64 fd; u64 transid, flags; u64[4]; char name[4040]}
BTRFS_SUBVOL_RDONLY = 1 << 1
BTRFS_FIRST_FREE_OBJECTID = 256  # the inode number of every subvolume's root directory


@contextlib.contextmanager
def _open_dir(path: Path) -> Iterator[int]:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


def _name(path: Path, size: int) -> bytes:
    name = os.fsencode(path.name)
    if not name or len(name) >= size or b"/" in name:
        raise errdefs.InvalidArgument(f"btrfs subvolume name {path.name!r} is not usable")
    return name.ljust(size, b"\0")


def _ioctl(fd: int, request: int, buf: bytearray, what: str) -> None:
    try:
        fcntl.ioctl(fd, request, buf, True)
    except OSError as exc:
        raise errdefs.Internal(f"btrfs: {what}: {exc.strerror} (errno {exc.errno})") from exc


def subvolume_create(path: Path) -> None:
    """``btrfs subvolume create path``.

    Raises:
        errdefs.Internal: the ioctl failed (not btrfs, exists, ...).
    """
    buf = bytearray(struct.pack("=q", 0) + _name(path, _ARGS_SIZE - 8))
    with _open_dir(path.parent) as fd:
        _ioctl(fd, BTRFS_IOC_SUBVOL_CREATE, buf, f"create subvolume {str(path)!r}")


def subvolume_snapshot(target: Path, source: Path, *, readonly: bool) -> None:
    """``btrfs subvolume snapshot [-r] source target``.

    Raises:
        errdefs.Internal: the ioctl failed.
    """
    flags = BTRFS_SUBVOL_RDONLY if readonly else 0
    with _open_dir(source) as src, _open_dir(target.parent) as dst:
        buf = bytearray(struct.pack("=qQQ32x", src, 0, flags) + _name(target, _ARGS_SIZE - 56))
        _ioctl(dst, BTRFS_IOC_SNAP_CREATE_V2, buf, f"snapshot {str(source)!r} to {str(target)!r}")


def subvolume_delete(path: Path) -> None:
    """``btrfs subvolume delete path`` (read-only ones too; needs root).

    Raises:
        errdefs.Internal: the ioctl failed.
    """
    buf = bytearray(struct.pack("=q", 0) + _name(path, _ARGS_SIZE - 8))
    with _open_dir(path.parent) as fd:
        _ioctl(fd, BTRFS_IOC_SNAP_DESTROY, buf, f"delete subvolume {str(path)!r}")


def subvolume_id(path: Path) -> int:
    """The id of the subvolume holding ``path`` (``btrfs inspect-internal rootid``).

    Raises:
        errdefs.Internal: the ioctl failed.
    """
    buf = bytearray(struct.pack("=QQ", 0, BTRFS_FIRST_FREE_OBJECTID).ljust(_ARGS_SIZE, b"\0"))
    with _open_dir(path) as fd:
        _ioctl(fd, BTRFS_IOC_INO_LOOKUP, buf, f"look up subvolume of {str(path)!r}")
    treeid: int = struct.unpack_from("=Q", buf)[0]
    return treeid


def is_subvolume(path: Path) -> bool:
    """Whether ``path`` is the root directory of a subvolume."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_ino == BTRFS_FIRST_FREE_OBJECTID


_KIND_DIRS = {Kind.ACTIVE: "active", Kind.VIEW: "view", Kind.COMMITTED: "snapshots"}


class BtrfsSnapshotter(LocalSnapshotter):
    """Snapshots as btrfs subvolumes under ``root``.

    Args:
        root: the snapshotter's directory (containerd's
            ``<root>/io.containerd.snapshotter.v1.btrfs``), created 0700.

    Raises:
        errdefs.FailedPrecondition: ``root`` is not on a btrfs filesystem.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        path = Path(root).absolute()
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        _, fstype, device = lookup(path)
        if fstype != "btrfs":
            raise errdefs.FailedPrecondition(
                f"path {str(path)!r} ({fstype}) must be a btrfs filesystem"
                " to be used with the btrfs snapshotter"
            )
        super().__init__(path)
        self.device = device
        for name in _KIND_DIRS.values():
            (self.root / name).mkdir(mode=0o700, exist_ok=True)

    def subvolume_path(self, kind: Kind, snapshot_id: str) -> Path:
        """``<root>/{active,view,snapshots}/<id>``."""
        return self.root / _KIND_DIRS[kind] / snapshot_id

    def _active_usage(self, snapshot_id: str) -> Usage:
        return disk_usage(self.subvolume_path(Kind.ACTIVE, snapshot_id))

    def _mounts(self, s: Snapshot) -> list[Mount]:
        sid = subvolume_id(self.subvolume_path(s.kind, s.id))
        flag = "rw" if s.kind is Kind.ACTIVE else "ro"
        return [Mount(type="btrfs", source=self.device, options=[f"subvolid={sid}", flag])]

    def _create(
        self, kind: Kind, key: str, parent: str, labels: Mapping[str, str] | None
    ) -> list[Mount]:
        made: Path | None = None
        try:
            with self._ms.transaction(writable=True) as st:
                s = st.create_snapshot(kind, key, parent, labels)
                target = self.subvolume_path(kind, s.id)
                if s.parent_ids:
                    source = self.subvolume_path(Kind.COMMITTED, s.parent_ids[0])
                    subvolume_snapshot(target, source, readonly=kind is Kind.VIEW)
                else:
                    subvolume_create(target)
                made = target
                if not s.parent_ids:
                    os.chmod(target, 0o755)
                mounts = self._mounts(s)
            made = None
            return mounts
        finally:
            if made is not None:
                subvolume_delete(made)

    def commit(self, name: str, key: str, labels: Mapping[str, str] | None = None) -> None:
        """See :meth:`Snapshotter.commit`: a read-only snapshot replaces the active subvolume."""
        made: Path | None = None
        try:
            with self._ms.transaction(writable=True) as st:
                snapshot_id, info, _ = st.get_info(key)
                source = self.subvolume_path(Kind.ACTIVE, snapshot_id)
                usage = disk_usage(source) if info.kind is Kind.ACTIVE else Usage()
                st.commit_active(key, name, usage, labels)  # validates before any subvolume
                target = self.subvolume_path(Kind.COMMITTED, snapshot_id)
                subvolume_snapshot(target, source, readonly=True)
                made = target
            made = None
        finally:
            if made is not None:
                subvolume_delete(made)
        subvolume_delete(source)

    def remove(self, key: str) -> None:
        """See :meth:`Snapshotter.remove`; the subvolume is deleted before this returns."""
        renamed: Path | None = None
        path: Path | None = None
        try:
            with self._ms.transaction(writable=True) as st:
                snapshot_id, kind = st.remove(key)
                path = self.subvolume_path(kind, snapshot_id)
                aside = path.with_name(f"rm-{snapshot_id}")
                if path.exists():
                    os.rename(path, aside)
                    renamed = aside
        except BaseException:
            if renamed is not None and path is not None:
                os.rename(renamed, path)
            raise
        if renamed is not None:
            subvolume_delete(renamed)

    def cleanup(self) -> None:
        """Delete subvolumes no snapshot owns (left by a crash mid-commit or mid-remove)."""
        with self._ms.transaction(writable=False) as st:
            removals = [p for d in _KIND_DIRS.values() for p in self._orphans(st, self.root / d)]
        for path in removals:
            if is_subvolume(path):
                subvolume_delete(path)
            else:
                remove_tree(path)
