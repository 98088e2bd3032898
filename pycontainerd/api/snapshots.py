"""containerd's Snapshots service (``snapshots.*``).

Every request names its ``snapshotter`` (``overlayfs``, ``native``,
``btrfs``); an empty or unknown one is ``InvalidArgument``. Kinds on the wire
are the strings ``"view"``, ``"active"`` and ``"committed"``. Mounts are
:class:`~pycontainerd.api.types.Mount` records for the caller to apply.
``snapshots.list`` answers in one reply (containerd streams batches of 100).
"""

from __future__ import annotations

from datetime import datetime

import attrs

from .bounds import FILTERS
from .types import FieldMask, Mount

KINDS = ("view", "active", "committed")


@attrs.frozen(kw_only=True)
class SnapshotInfo:
    """containerd ``snapshots.v1.Info``: ``name`` is the key (active, view) or name."""

    name: str = ""
    parent: str = ""
    kind: str = ""
    """``"view"``, ``"active"`` or ``"committed"``."""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    labels: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class PrepareSnapshotRequest:
    snapshotter: str = ""
    key: str = ""
    parent: str = ""
    """A committed snapshot's name, or ``""`` for an empty tree."""
    labels: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class PrepareSnapshotResponse:
    mounts: list[Mount] = attrs.field(factory=list)


@attrs.frozen(kw_only=True)
class ViewSnapshotRequest:
    snapshotter: str = ""
    key: str = ""
    parent: str = ""
    labels: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class ViewSnapshotResponse:
    mounts: list[Mount] = attrs.field(factory=list)


@attrs.frozen(kw_only=True)
class MountsRequest:
    snapshotter: str = ""
    key: str = ""


@attrs.frozen(kw_only=True)
class MountsResponse:
    mounts: list[Mount] = attrs.field(factory=list)


@attrs.frozen(kw_only=True)
class RemoveSnapshotRequest:
    snapshotter: str = ""
    key: str = ""


@attrs.frozen(kw_only=True)
class CommitSnapshotRequest:
    snapshotter: str = ""
    name: str = ""
    """The committed snapshot's name."""
    key: str = ""
    """The active snapshot to commit; gone afterwards."""
    labels: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class StatSnapshotRequest:
    snapshotter: str = ""
    key: str = ""


@attrs.frozen(kw_only=True)
class StatSnapshotResponse:
    info: SnapshotInfo = attrs.field(factory=SnapshotInfo)


@attrs.frozen(kw_only=True)
class UpdateSnapshotRequest:
    snapshotter: str = ""
    info: SnapshotInfo = attrs.field(factory=SnapshotInfo)
    update_mask: FieldMask | None = None
    """``labels`` or ``labels.<key>``; absent = replace all labels."""


@attrs.frozen(kw_only=True)
class UpdateSnapshotResponse:
    info: SnapshotInfo = attrs.field(factory=SnapshotInfo)


@attrs.frozen(kw_only=True)
class ListSnapshotsRequest:
    snapshotter: str = ""
    filters: list[str] = attrs.field(factory=list, metadata=FILTERS)
    """Fields ``name``, ``parent``, ``kind``, ``labels.<key>``; any may match."""


@attrs.frozen(kw_only=True)
class ListSnapshotsResponse:
    info: list[SnapshotInfo] = attrs.field(factory=list)


@attrs.frozen(kw_only=True)
class UsageRequest:
    snapshotter: str = ""
    key: str = ""


@attrs.frozen(kw_only=True)
class UsageResponse:
    size: int = 0
    """Bytes of allocated blocks."""
    inodes: int = 0


@attrs.frozen(kw_only=True)
class CleanupRequest:
    snapshotter: str = ""
