"""containerd's Diff service (``diff.*``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from .types import Descriptor, Mount


@attrs.frozen(kw_only=True)
class ApplyRequest:
    diff: Descriptor = attrs.field(factory=Descriptor)
    """The layer blob (in this namespace's content)."""
    mounts: list[Mount] = attrs.field(factory=list)
    """An active snapshot's mounts (``snapshots.prepare``)."""
    payloads: dict[str, Any] = attrs.field(factory=dict)
    sync_fs: bool = False


@attrs.frozen(kw_only=True)
class ApplyResponse:
    applied: Descriptor = attrs.field(factory=Descriptor)
    """The uncompressed tar: ``digest`` is the DiffID, ``size`` its length."""


@attrs.frozen(kw_only=True)
class DiffRequest:
    left: list[Mount] = attrs.field(factory=list)
    """The lower tree (e.g. a view of the parent); empty: the empty tree."""
    right: list[Mount] = attrs.field(factory=list)
    media_type: str = ""
    """``...layer.v1.tar``, ``+gzip`` (default) or ``+zstd``."""
    ref: str = ""
    labels: dict[str, str] = attrs.field(factory=dict)
    source_date_epoch: datetime | None = None


@attrs.frozen(kw_only=True)
class DiffResponse:
    diff: Descriptor = attrs.field(factory=Descriptor)
