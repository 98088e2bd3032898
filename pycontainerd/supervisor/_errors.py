"""The runtime's errors, split by meaning as trio splits its resource errors.

``MailboxFull`` (busy: try later), ``MailboxClosed`` (we stopped it),
``ActorCrashed`` (it died under you; the cause is in ``__cause__``). The first
three are errdefs, so the wire converts them like any domain error;
``SupervisorGaveUp`` is not: it travels up the tree, never to a client.
"""

from __future__ import annotations

from pycontainerd.api import errdefs


class MailboxFull(errdefs.ResourceExhausted):
    """``send_nowait`` found the bounded mailbox full."""


class MailboxClosed(errdefs.Unavailable):
    """The actor was stopped for good; its mailbox takes no more messages."""


class ActorCrashed(errdefs.Internal):
    """The actor died while handling (or before handling) this message."""


class SupervisorGaveUp(Exception):
    """More than ``intensity`` restarts in ``period`` seconds.

    The supervisor has stopped all its children; its own parent decides next.
    """

    def __init__(self, supervisor: str, child: str, restarts: int, period: float) -> None:
        super().__init__(
            f"supervisor {supervisor!r} gave up: child {child!r} restarted "
            f"{restarts} times in {period:g}s"
        )
        self.supervisor = supervisor
        self.child = child
        self.restarts = restarts
        self.period = period
