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
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from pycontainerd.api.types import Mount

from ._common import LocalSnapshotter, remove_tree
from ._fs import copy_dir, disk_usage
from ._interfaces import Kind, Usage
from ._metastore import Snapshot


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

    def commit(self, name: str, key: str, labels: Mapping[str, str] | None = None) -> None:
        """See :meth:`Snapshotter.commit`; the tree stays where it is, now read-only by contract."""
        with self._ms.transaction(writable=True) as st:
            snapshot_id, info, _ = st.get_info(key)
            usage = Usage()
            if info.kind is Kind.ACTIVE:
                usage = disk_usage(self.snapshot_dir(snapshot_id))
            st.commit_active(key, name, usage, labels)

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
