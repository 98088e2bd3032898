"""Our own ``debug.*`` service: the live actor tree."""

from __future__ import annotations

import attrs


@attrs.frozen(kw_only=True)
class ActorsRequest:
    pass


@attrs.frozen(kw_only=True)
class ActorInfo:
    path: str = ""
    kind: str = ""
    mailbox_depth: int = 0
    mailbox_capacity: int = 0
    peak_depth: int = 0
    restarts: int = 0
    age_seconds: float = 0.0
    status: str = ""


@attrs.frozen(kw_only=True)
class ActorsResponse:
    actors: list[ActorInfo] = attrs.field(factory=list)
