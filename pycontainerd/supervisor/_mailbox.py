"""Bounded mailboxes and the replies that travel through them."""

from __future__ import annotations

from typing import Any

import attrs
import trio

from pycontainerd.api import errdefs

from ._errors import ActorCrashed, MailboxClosed, MailboxFull


@attrs.frozen
class MailboxStatistics:
    """What ``debug.actors`` shows of one mailbox."""

    depth: int
    capacity: int
    peak_depth: int


class Reply:
    """A one-shot slot the actor fills with a value or an error.

    An error that crosses the mailbox would otherwise hold a reference cycle
    (error -> traceback -> the handler's and the caller's frames -> this
    reply -> error): everything those frames hold, a rejected 16 MiB request
    included, stays alive until the cyclic collector runs, which in a quiet
    daemon is rarely. So a domain error crosses without its traceback and
    chained exceptions (it is an answer, not a bug; its message says what the
    caller needs; a crash keeps its cause, for the log), and :meth:`wait`
    hands its error over once and forgets it.
    """

    __slots__ = ("_error", "_event", "_value")

    def __init__(self) -> None:
        self._event = trio.Event()
        self._value: Any = None
        self._error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self._event.is_set()

    def set(self, value: Any) -> None:
        if not self._event.is_set():
            self._value = value
            self._event.set()

    def fail(self, error: BaseException) -> None:
        if not self._event.is_set():
            if isinstance(error, errdefs.ErrdefsError) and not isinstance(error, ActorCrashed):
                error.__traceback__ = None
                error.__cause__ = error.__context__ = None
            self._error = error
            self._event.set()

    async def wait(self) -> Any:
        """The value, or raise the error (once: a second wait returns ``None``)."""
        await self._event.wait()
        error, self._error = self._error, None
        if error is not None:
            try:
                raise error
            finally:
                del error, self
        return self._value


@attrs.frozen
class Envelope:
    """One message in a mailbox; ``reply`` is ``None`` for ``send``."""

    msg: object
    reply: Reply | None


class Mailbox:
    """A bounded FIFO of envelopes that outlives the actor instances reading it.

    A restarted actor keeps its mailbox, so messages queued behind the one that
    crashed it are handled by its successor; only :meth:`close` (the actor is
    stopped for good) fails them.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._tx, self._rx = trio.open_memory_channel[Envelope](capacity)
        self._peak = 0
        self._closed = False

    def _note(self) -> None:
        depth = self._rx.statistics().current_buffer_used
        if depth > self._peak:
            self._peak = depth

    async def put(self, env: Envelope) -> None:
        """Enqueue, waiting while the mailbox is full (backpressure).

        Raises:
            MailboxClosed: the actor was stopped for good.
        """
        try:
            await self._tx.send(env)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise MailboxClosed("actor stopped") from None
        self._note()

    def put_nowait(self, env: Envelope) -> None:
        """Enqueue without waiting.

        Raises:
            MailboxFull: no room now.
            MailboxClosed: the actor was stopped for good.
        """
        try:
            self._tx.send_nowait(env)
        except trio.WouldBlock:
            raise MailboxFull(f"mailbox full ({self.capacity} messages)") from None
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise MailboxClosed("actor stopped") from None
        self._note()

    async def get(self) -> Envelope:
        return await self._rx.receive()

    def get_nowait(self) -> Envelope:
        return self._rx.receive_nowait()

    @property
    def depth(self) -> int:
        return self._rx.statistics().current_buffer_used

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self, reason: str = "actor stopped") -> None:
        """Take no more messages and fail every queued reply with ``MailboxClosed``."""
        self._closed = True
        self._tx.close()
        while True:
            try:
                env = self._rx.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            if env.reply is not None:
                env.reply.fail(MailboxClosed(reason))

    def statistics(self) -> MailboxStatistics:
        return MailboxStatistics(depth=self.depth, capacity=self.capacity, peak_depth=self._peak)
