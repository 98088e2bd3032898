"""containerd's Events service (``events.*``), with the journal's ``since``."""

from __future__ import annotations

from typing import Any

import attrs

from .bounds import FILTERS
from .types import Envelope

MAX_EVENT_SIZE = 1 << 20
"""The largest ``event`` map a client may publish or forward: 1 MiB, msgpack-encoded.

containerd bounds events only by its 16 MiB message size. Here every event is
kept in the journal and replayed to each ``since`` subscriber, so a client's
event is bounded more tightly (containerd's own events are a few hundred
bytes). Past it: ``ResourceExhausted``, the code of an oversized message.
"""


@attrs.frozen(kw_only=True)
class PublishRequest:
    topic: str = ""
    event: dict[str, Any] = attrs.field(factory=dict)
    """The payload: at most 1 MiB msgpack-encoded, else `ResourceExhausted`."""


@attrs.frozen(kw_only=True)
class ForwardRequest:
    envelope: Envelope = attrs.field(factory=Envelope)
    """Its `event` is at most 1 MiB msgpack-encoded, else `ResourceExhausted`."""


@attrs.frozen(kw_only=True)
class SubscribeRequest:
    filters: list[str] = attrs.field(factory=list, metadata=FILTERS)
    since: int | None = None
    """Last sequence seen: replay after it, then live. Absent: live only. 0: from the oldest.
    Beyond the journal's head (a journal that was reset): `OutOfRange`, naming the head."""
