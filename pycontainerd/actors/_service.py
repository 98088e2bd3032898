"""The one helper every service handler uses to reach an actor in two phases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pycontainerd.api.rpc import Wait
from pycontainerd.api.types import Empty
from pycontainerd.supervisor import ActorRef


def _empty(_: object) -> Empty:
    return Empty()


async def ask(ref: ActorRef, msg: object, reply: Callable[[Any], Any] = _empty) -> Wait:
    """Enqueue ``msg`` now; the returned :data:`Wait` awaits the actor's answer.

    Args:
        ref: the actor.
        msg: the message; it is in the actor's mailbox when this returns.
        reply: turns the actor's answer into the response object (default ``Empty``).
    """
    pending = await ref.request(msg)

    async def wait() -> Any:
        return reply(await pending.wait())

    return wait
