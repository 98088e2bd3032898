"""containerd's Events service (``events.*``), with the journal's ``since``."""

from __future__ import annotations

from typing import Any

import attrs

from .bounds import FILTERS
from .types import Envelope


@attrs.frozen(kw_only=True)
class PublishRequest:
    topic: str = ""
    event: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class ForwardRequest:
    envelope: Envelope = attrs.field(factory=Envelope)


@attrs.frozen(kw_only=True)
class SubscribeRequest:
    filters: list[str] = attrs.field(factory=list, metadata=FILTERS)
    since: int | None = None
    """Last sequence seen: replay after it, then live. Absent: live only. 0: from the oldest."""
