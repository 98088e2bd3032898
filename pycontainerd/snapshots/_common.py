"""What the three local snapshotters share: the metastore and the read-only methods.

Each backend (overlayfs, native, btrfs) subclasses :class:`LocalSnapshotter`
and supplies directory layout, mounts, creation, commit and removal; stat,
update, walk, usage of committed snapshots and close are answered from
``<root>/metadata.db`` the same way for all of them. Also the filesystem
helpers they share: :func:`disk_usage` (containerd ``fs.DiskUsage``) and
:func:`remove_tree`.
"""

from __future__ import annotations

import abc
import os
import shutil
import stat
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from pycontainerd.api.types import Mount

from ._interfaces import Info, Kind, Usage
from ._metastore import MetaStore, Snapshot, Storage


class LocalSnapshotter(abc.ABC):
    """Base of the snapshotters that keep their trees under one local ``root``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._ms = MetaStore.open(self.root / "metadata.db")

    # -- per-backend hooks -------------------------------------------------

    def _decorate(self, snapshot_id: str, info: Info) -> Info:
        """Add backend labels to what stat/update/walk return (overlay's upperdir)."""
        return info

    @abc.abstractmethod
    def _mounts(self, s: Snapshot) -> list[Mount]:
        """The mounts of an active snapshot or view."""

    @abc.abstractmethod
    def _active_usage(self, snapshot_id: str) -> Usage:
        """Scan the writable directory of an active snapshot."""

    @abc.abstractmethod
    def _create(
        self, kind: Kind, key: str, parent: str, labels: Mapping[str, str] | None
    ) -> list[Mount]:
        """Record and lay out a new active snapshot or view; answer its mounts."""

    def commit(self, name: str, key: str, labels: Mapping[str, str] | None = None) -> None:
        """See :meth:`Snapshotter.commit`: the layer keeps its directory and id, its
        usage is taken now (btrfs, which snapshots the subvolume, overrides this)."""
        with self._ms.transaction(writable=True) as st:
            snapshot_id, info, _ = st.get_info(key)
            usage = self._active_usage(snapshot_id) if info.kind is Kind.ACTIVE else Usage()
            st.commit_active(key, name, usage, labels)

    @abc.abstractmethod
    def remove(self, key: str) -> None:
        """See :meth:`Snapshotter.remove`."""

    @abc.abstractmethod
    def cleanup(self) -> None:
        """See :meth:`Snapshotter.cleanup`."""

    # -- the Snapshotter protocol -------------------------------------------

    def stat(self, key: str) -> Info:
        """See :meth:`Snapshotter.stat`."""
        with self._ms.transaction(writable=False) as st:
            snapshot_id, info, _ = st.get_info(key)
        return self._decorate(snapshot_id, info)

    def update(self, info: Info, paths: Sequence[str] = ()) -> Info:
        """See :meth:`Snapshotter.update`."""
        with self._ms.transaction(writable=True) as st:
            updated = st.update_info(info, paths)
            snapshot_id, _, _ = st.get_info(info.name)
        return self._decorate(snapshot_id, updated)

    def usage(self, key: str) -> Usage:
        """See :meth:`Snapshotter.usage`."""
        with self._ms.transaction(writable=False) as st:
            snapshot_id, info, usage = st.get_info(key)
            if info.kind is Kind.ACTIVE:
                return self._active_usage(snapshot_id)
        return usage

    def mounts(self, key: str) -> list[Mount]:
        """See :meth:`Snapshotter.mounts`."""
        with self._ms.transaction(writable=False) as st:
            s = st.get_snapshot(key)
            return self._mounts(s)

    def prepare(
        self, key: str, parent: str = "", labels: Mapping[str, str] | None = None
    ) -> list[Mount]:
        """See :meth:`Snapshotter.prepare`."""
        return self._create(Kind.ACTIVE, key, parent, labels)

    def view(
        self, key: str, parent: str = "", labels: Mapping[str, str] | None = None
    ) -> list[Mount]:
        """See :meth:`Snapshotter.view`."""
        return self._create(Kind.VIEW, key, parent, labels)

    def walk(self, filters: Sequence[str] = ()) -> Iterator[Info]:
        """See :meth:`Snapshotter.walk`; filters are checked before this returns."""
        with self._ms.transaction(writable=False) as st:
            infos = st.walk_info(filters)
            ids = {v: k for k, v in st.id_map().items()}
        return iter([self._decorate(ids[info.name], info) for info in infos])

    def close(self) -> None:
        """See :meth:`Snapshotter.close`."""
        self._ms.close()

    # -- helpers for the backends -------------------------------------------

    def _orphans(self, st: Storage, directory: Path) -> list[Path]:
        """Entries of ``directory`` that belong to no snapshot (removed, or a crashed build)."""
        ids = st.id_map()
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return []
        return [directory / n for n in sorted(names) if n not in ids]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} root={str(self.root)!r}>"


def remove_tree(path: Path) -> None:
    """``rm -rf path``; a path that is already gone is fine.

    Raises:
        OSError: something under ``path`` could not be removed.
    """
    if not path.is_dir() or path.is_symlink():
        path.unlink(missing_ok=True)
        return
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        # An entry vanished under us (another cleanup); finish what is left.
        if path.exists():
            shutil.rmtree(path)


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
