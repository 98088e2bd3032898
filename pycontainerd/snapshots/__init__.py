"""Snapshotters: stacked filesystem trees for image layers and container rootfs.

Synchronous stores, one per backend, all satisfying :class:`Snapshotter`
(containerd ``snapshots.Snapshotter``; read its docstring for the vocabulary)::

    sn = OverlaySnapshotter(root / "io.containerd.snapshotter.v1.overlayfs")
    mounts = sn.prepare("extract-1", "")          # -> [Mount(type="bind", ...)]
    with mount.with_temp_mount(mounts) as tree:
        ...                                       # write the layer
    sn.commit("layer-1", "extract-1")
    sn.view("ro-1", "layer-1")                    # read-only, mountable
    sn.remove("ro-1"); sn.cleanup()               # overlay deletes on cleanup

* :class:`OverlaySnapshotter`: overlayfs layers (the default).
* :class:`NativeSnapshotter`: plain copies; works on any filesystem.
* :class:`BtrfsSnapshotter`: btrfs subvolumes; ``root`` must be on btrfs.

Each keeps ``<root>/metadata.db`` (:class:`MetaStore`). Calls block on disk
and on ``mount``-free filesystem work; the daemon runs them in worker threads,
which is safe: the metastore serialises its transactions.
"""

from __future__ import annotations

from ._btrfs import BtrfsSnapshotter as BtrfsSnapshotter
from ._common import LocalSnapshotter as LocalSnapshotter
from ._common import disk_usage as disk_usage
from ._interfaces import Info as Info
from ._interfaces import Kind as Kind
from ._interfaces import Snapshotter as Snapshotter
from ._interfaces import Usage as Usage
from ._metastore import MetaStore as MetaStore
from ._metastore import Snapshot as Snapshot
from ._metastore import Storage as Storage
from ._native import NativeSnapshotter as NativeSnapshotter
from ._native import copy_dir as copy_dir
from ._overlay import UPPERDIR_LABEL as UPPERDIR_LABEL
from ._overlay import OverlaySnapshotter as OverlaySnapshotter
