"""The content value types a content store returns (containerd ``content/content.go``).

They live here, not in :mod:`pycontainerd.content`, so that the client can
use them without importing the local store; :mod:`pycontainerd.content`
re-exports them under the same names.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import attrs

__all__ = ["CHUNK", "Info", "Status"]

CHUNK = 1 << 20
"""Bytes per read or write of a blob: per ``content.read`` reply, per ``content.write`` call."""


@attrs.frozen(kw_only=True)
class Info:
    """A committed blob: containerd's ``content.Info``."""

    digest: str
    size: int
    created_at: datetime
    updated_at: datetime
    labels: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class Status:
    """An ingest in progress: containerd's ``content.Status``."""

    ref: str
    offset: int
    total: int
    started_at: datetime
    updated_at: datetime
    expected: str = ""
