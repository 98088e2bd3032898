"""``ActorRef``: how everyone else talks to an actor."""

from __future__ import annotations

from typing import Any

from ._mailbox import Envelope, Mailbox, MailboxStatistics, Reply


class Stop:
    """Stop after the messages queued before this one (OTP ``shutdown``)."""

    __slots__ = ()


STOP = Stop()


class PendingReply:
    """A request in a mailbox; :meth:`wait` returns the actor's answer."""

    __slots__ = ("_reply",)

    def __init__(self, reply: Reply) -> None:
        self._reply = reply

    @property
    def done(self) -> bool:
        return self._reply.done

    async def wait(self) -> Any:
        """The handler's result.

        Raises:
            ErrdefsError: the handler's domain error, as raised.
            ActorCrashed: the actor died before answering.
            MailboxClosed: the actor was stopped for good before handling it.
        """
        return await self._reply.wait()


class ActorCell:
    """The part of an actor that survives restarts: its path and mailbox.

    The supervisor owns the cell; each restart puts a fresh actor instance in
    ``actor`` and keeps the mailbox, so refs held by callers stay valid. The
    cell only holds the instance (an ``Actor`` puts itself here when it runs);
    typed ``object`` so that this module stays below ``_actor``.
    """

    def __init__(self, path: str, capacity: int) -> None:
        self.path = path
        self.mailbox = Mailbox(capacity)
        self.actor: object | None = None
        self.ref = ActorRef(self)


class ActorRef:
    """A handle on an actor's mailbox; valid across the actor's restarts.

    Messages from one task reach the actor in the order they were sent.
    """

    __slots__ = ("_cell",)

    def __init__(self, cell: ActorCell) -> None:
        self._cell = cell

    @property
    def path(self) -> str:
        return self._cell.path

    @property
    def actor(self) -> object | None:
        """The live instance (``None`` between a crash and its restart)."""
        return self._cell.actor

    async def request(self, msg: object) -> PendingReply:
        """Enqueue ``msg`` and return at once; ``wait()`` on the result for the answer.

        Waits while the mailbox is full. If cancelled after this returns, the
        message is still processed.

        Raises:
            MailboxClosed: the actor was stopped for good.
        """
        reply = Reply()
        await self._cell.mailbox.put(Envelope(msg, reply))
        return PendingReply(reply)

    async def call(self, msg: object) -> Any:
        """Enqueue ``msg`` and wait for the handler's result (or its domain error)."""
        pending = await self.request(msg)
        return await pending.wait()

    async def send(self, msg: object) -> None:
        """Enqueue ``msg`` without waiting for a result (blocks while full)."""
        await self._cell.mailbox.put(Envelope(msg, None))

    def send_nowait(self, msg: object) -> None:
        """Enqueue ``msg`` now.

        Raises:
            MailboxFull: the mailbox is full.
            MailboxClosed: the actor was stopped for good.
        """
        self._cell.mailbox.put_nowait(Envelope(msg, None))

    async def stop(self) -> None:
        """Ask the actor to stop once the messages already queued are handled."""
        await self._cell.mailbox.put(Envelope(STOP, None))

    def statistics(self) -> MailboxStatistics:
        return self._cell.mailbox.statistics()

    def __repr__(self) -> str:
        stats = self.statistics()
        return f"<ActorRef {self.path!r} mailbox={stats.depth}/{stats.capacity}>"
