"""The overlayfs snapshotter (containerd ``snapshots/overlay/overlay.go``).

Layout under ``root`` (containerd's, byte for byte)::

    <root>/metadata.db              the metastore
    <root>/snapshots/<id>/fs        the snapshot's own changes (overlay upperdir)
    <root>/snapshots/<id>/work      overlay workdir; active snapshots only
    <root>/snapshots/new-XXXXXX     a snapshot being built, renamed to <id>

A committed snapshot is never copied: it is a lowerdir of its children. The
mounts of a snapshot with parents stack the parents' ``fs`` directories,
immediate parent first, under the snapshot's own ``fs``.
"""

from __future__ import annotations

import os
import platform
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs

from pycontainerd.api.types import Mount

from ._common import LocalSnapshotter, disk_usage, remove_tree
from ._interfaces import Info, Kind, Usage
from ._metastore import Snapshot

UPPERDIR_LABEL = "containerd.io/snapshot/overlay.upperdir"
_INDEX_PARAMETER = Path("/sys/module/overlay/parameters/index")


def running_in_user_namespace() -> bool:
    """Whether this process runs in a user namespace (containerd ``userns.RunningInUserNS``)."""
    try:
        text = Path("/proc/self/uid_map").read_text()
    except OSError:
        return False
    fields = text.split()
    return fields != ["0", "0", "4294967295"]


def needs_userxattr() -> bool:
    """Whether overlay must be mounted with ``userxattr`` (rootless, kernel 5.11+).

    Outside a user namespace overlay keeps its metadata in ``trusted.*``
    extended attributes and needs nothing; inside one only ``user.*`` can be
    written, which kernels from 5.11 on support with ``userxattr``.
    """
    if not running_in_user_namespace():
        return False
    release = platform.release().split("-", 1)[0].split(".")
    try:
        major, minor = int(release[0]), int(release[1])
    except (IndexError, ValueError):
        return False
    return (major, minor) >= (5, 11)


def _has_option(options: Sequence[str], name: str) -> bool:
    return any(o == name or o.startswith(name + "=") for o in options)


class OverlaySnapshotter(LocalSnapshotter):
    """Snapshots as overlayfs layers under ``root``.

    Args:
        root: the snapshotter's directory (containerd's
            ``<root>/io.containerd.snapshotter.v1.overlayfs``), created 0700.
        mount_options: extra options put first on every overlay mount
            (containerd's ``mount_options``, e.g. ``volatile``).
        sync_remove: delete a removed snapshot's directories at once instead
            of at the next :meth:`cleanup`.
        upperdir_label: add ``containerd.io/snapshot/overlay.upperdir`` to the
            labels that stat, update and walk return.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        mount_options: Sequence[str] = (),
        sync_remove: bool = False,
        upperdir_label: bool = False,
    ) -> None:
        super().__init__(root)
        (self.root / "snapshots").mkdir(mode=0o700, exist_ok=True)
        options = list(mount_options)
        if not _has_option(options, "userxattr") and needs_userxattr():
            options.append("userxattr")
        if not _has_option(options, "index") and _INDEX_PARAMETER.exists():
            options.append("index=off")
        self.options: tuple[str, ...] = tuple(options)
        self.sync_remove = sync_remove
        self.upperdir_label = upperdir_label

    def upper_path(self, snapshot_id: str) -> Path:
        """``<root>/snapshots/<id>/fs``."""
        return self.root / "snapshots" / snapshot_id / "fs"

    def work_path(self, snapshot_id: str) -> Path:
        """``<root>/snapshots/<id>/work``."""
        return self.root / "snapshots" / snapshot_id / "work"

    def _decorate(self, snapshot_id: str, info: Info) -> Info:
        if not self.upperdir_label:
            return info
        labels = {**info.labels, UPPERDIR_LABEL: str(self.upper_path(snapshot_id))}
        return attrs.evolve(info, labels=labels)

    def _active_usage(self, snapshot_id: str) -> Usage:
        return disk_usage(self.upper_path(snapshot_id))

    def _mounts(self, s: Snapshot) -> list[Mount]:
        if not s.parent_ids:
            # One layer: overlay needs a lowerdir, so bind the directory itself.
            flag = "ro" if s.kind is Kind.VIEW else "rw"
            return [Mount(type="bind", source=str(self.upper_path(s.id)), options=[flag, "rbind"])]
        options = list(self.options)
        if s.kind is Kind.ACTIVE:
            options.append(f"workdir={self.work_path(s.id)}")
            options.append(f"upperdir={self.upper_path(s.id)}")
        elif len(s.parent_ids) == 1:
            source = str(self.upper_path(s.parent_ids[0]))
            return [Mount(type="bind", source=source, options=["ro", "rbind"])]
        lower = ":".join(str(self.upper_path(p)) for p in s.parent_ids)
        options.append(f"lowerdir={lower}")
        return [Mount(type="overlay", source="overlay", options=options)]

    def _create(
        self, kind: Kind, key: str, parent: str, labels: Mapping[str, str] | None
    ) -> list[Mount]:
        snapshots_dir = self.root / "snapshots"
        building: Path | None = None
        try:
            with self._ms.transaction(writable=True) as st:
                building = Path(tempfile.mkdtemp(prefix="new-", dir=snapshots_dir))
                (building / "fs").mkdir(mode=0o755)
                os.chmod(building / "fs", 0o755)  # whatever the umask
                if kind is Kind.ACTIVE:
                    (building / "work").mkdir(mode=0o711)
                    os.chmod(building / "work", 0o711)
                s = st.create_snapshot(kind, key, parent, labels)
                if s.parent_ids:
                    pst = os.stat(self.upper_path(s.parent_ids[0]))
                    os.lchown(building / "fs", pst.st_uid, pst.st_gid)
                os.rename(building, snapshots_dir / s.id)
                building = None
                return self._mounts(s)
        finally:
            if building is not None:
                remove_tree(building)

    def remove(self, key: str) -> None:
        """See :meth:`Snapshotter.remove`.

        The directories stay until :meth:`cleanup` unless ``sync_remove``;
        either way the key is free as soon as this returns.
        """
        removals: list[Path] = []
        with self._ms.transaction(writable=True) as st:
            st.remove(key)
            if self.sync_remove:
                removals = self._orphans(st, self.root / "snapshots")
        for path in removals:
            remove_tree(path)

    def cleanup(self) -> None:
        """Delete the directories of removed snapshots (containerd ``Cleaner``)."""
        with self._ms.transaction(writable=False) as st:
            removals = self._orphans(st, self.root / "snapshots")
        for path in removals:
            remove_tree(path)
