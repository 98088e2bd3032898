"""Mounts: apply containerd's :class:`~pycontainerd.api.types.Mount` records.

A snapshotter answers ``prepare``/``view``/``mounts`` with a list of mounts;
nothing is mounted until somebody applies them::

    mounts = snapshotter.prepare("extract-1", parent)
    with with_temp_mount(mounts) as root:      # mount.WithTempMount
        apply_layer(root, tar)                  # write into the new snapshot
    snapshotter.commit(chain_id, "extract-1")

``mount_all(mounts, target)`` / ``unmount_all(target)`` are the long-lived form
(a container's rootfs). Everything here is synchronous and needs root; call it
from a worker thread.
"""

from __future__ import annotations

from pycontainerd.api.types import Mount as Mount

from ._linux import MNT_DETACH as MNT_DETACH
from ._linux import MNT_FORCE as MNT_FORCE
from ._linux import PAGE_SIZE as PAGE_SIZE
from ._linux import compact_lowerdir_option as compact_lowerdir_option
from ._linux import is_mountpoint as is_mountpoint
from ._linux import lookup as lookup
from ._linux import mount as mount
from ._linux import mount_all as mount_all
from ._linux import parse_mount_options as parse_mount_options
from ._linux import read_only as read_only
from ._linux import read_only_mounts as read_only_mounts
from ._linux import unmount as unmount
from ._linux import unmount_all as unmount_all
from ._linux import with_readonly_temp_mount as with_readonly_temp_mount
from ._linux import with_temp_mount as with_temp_mount
