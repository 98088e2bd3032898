"""The snapshot value types a snapshotter returns (containerd ``snapshots/snapshotter.go``).

They live here, not in :mod:`pycontainerd.snapshots`, so that the client can
use them without importing the snapshotters (btrfs, the metastore, sqlite);
:mod:`pycontainerd.snapshots` re-exports them under the same names.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime

import attrs

from . import errdefs

__all__ = ["Info", "Kind", "Usage"]


class Kind(enum.Enum):
    """What a snapshot is; the value is the wire string.

    ``VIEW`` and ``ACTIVE`` are addressed by their *key* and can be mounted;
    ``COMMITTED`` is addressed by its *name* and can only be a parent.
    """

    VIEW = "view"
    ACTIVE = "active"
    COMMITTED = "committed"

    @classmethod
    def parse(cls, text: str) -> Kind:
        """containerd ``ParseKind``: case-insensitive.

        Raises:
            errdefs.InvalidArgument: not one of view, active, committed.
        """
        try:
            return cls(text.lower())
        except ValueError:
            raise errdefs.InvalidArgument(f"unknown snapshot kind {text!r}") from None


@attrs.frozen(kw_only=True)
class Info:
    """One snapshot as stored: ``name`` is its key (active, view) or name (committed).

    ``parent`` is the committed parent's name or ``""``; ``created_at`` and
    ``updated_at`` are aware UTC datetimes.
    """

    kind: Kind
    name: str
    parent: str = ""
    labels: Mapping[str, str] = attrs.field(factory=dict)
    created_at: datetime
    updated_at: datetime


@attrs.frozen
class Usage:
    """Disk resources of one snapshot (containerd ``snapshots.Usage``).

    ``size`` is in bytes of allocated blocks, ``inodes`` counts distinct
    inodes (hard links once). Overlay counts a snapshot's own layer only; the
    native and btrfs snapshotters scan an active snapshot's whole tree, its
    parent's files included, as containerd's do.
    """

    size: int = 0
    inodes: int = 0

    def add(self, other: Usage) -> Usage:
        """The sum of two usages."""
        return Usage(self.size + other.size, self.inodes + other.inodes)
