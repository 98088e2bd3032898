"""The live exchange: fan-out of committed journal records to subscriptions.

The metadata actor hands every committed batch of journal records to
:meth:`Exchange.deliver`, which never waits: a subscription whose bounded
queue is full is ended with ``ResourceExhausted`` (the subscriber resumes with
``since``), so a subscriber that stops reading never stalls a publisher.
"""

from __future__ import annotations

from collections.abc import Sequence

import trio

from pycontainerd.api import errdefs, filters
from pycontainerd.api.types import Envelope
from pycontainerd.metadata import EventRecord


def envelope(rec: EventRecord) -> Envelope:
    """The wire envelope of a journal record."""
    return Envelope(
        sequence=rec.sequence,
        timestamp=rec.timestamp,
        namespace=rec.namespace,
        topic=rec.topic,
        event=rec.event,
    )


def matches(flt: filters.Filter, rec: EventRecord) -> bool:
    """Whether ``rec`` passes ``flt`` (fields ``namespace``, ``topic``, ``event.<f>``)."""
    return flt.match(
        filters.adapt({"namespace": rec.namespace, "topic": rec.topic, "event": rec.event})
    )


class Subscription:
    """One subscriber's bounded queue of live records."""

    def __init__(self, exchange: Exchange, flt: filters.Filter, size: int) -> None:
        self._exchange = exchange
        self.filter = flt
        self._tx, self._rx = trio.open_memory_channel[EventRecord](size)
        self.overflowed = False

    def offer(self, rec: EventRecord) -> None:
        if self.overflowed or not matches(self.filter, rec):
            return
        try:
            self._tx.send_nowait(rec)
        except trio.WouldBlock:
            self.overflowed = True
            self._tx.close()
        except trio.ClosedResourceError:
            pass

    async def receive(self) -> EventRecord:
        """The next live record.

        Raises:
            errdefs.ResourceExhausted: the subscriber fell too far behind.
        """
        try:
            return await self._rx.receive()
        except trio.EndOfChannel:
            raise errdefs.ResourceExhausted(
                "subscriber too slow: events queue full; resubscribe with since"
            ) from None

    def close(self) -> None:
        self._exchange.unsubscribe(self)
        self._tx.close()
        self._rx.close()


class Exchange:
    """Fan-out of committed journal records to live subscriptions."""

    def __init__(self, queue_size: int = 1024) -> None:
        self.queue_size = queue_size
        self._subs: dict[int, Subscription] = {}

    def subscribe(self, flt: filters.Filter) -> Subscription:
        sub = Subscription(self, flt, self.queue_size)
        self._subs[id(sub)] = sub
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.pop(id(sub), None)

    def deliver(self, records: Sequence[EventRecord]) -> None:
        for rec in records:
            for sub in list(self._subs.values()):
                sub.offer(rec)

    @property
    def subscribers(self) -> int:
        return len(self._subs)
