"""The live exchange: fan-out of committed journal records to subscriptions.

The metadata actor matches every committed batch of journal records against
the subscriptions' filters in its database thread (:meth:`Exchange.route`),
then queues them on the loop (:meth:`Exchange.put`), which never waits: a subscription whose bounded
queue is full is ended with ``ResourceExhausted`` (the subscriber resumes with
``since``), so a subscriber that stops reading never stalls a publisher. A
queue is bounded in records (``subscriber_queue_size``) and in the events'
encoded bytes (:data:`QUEUE_BYTES`), so that one subscriber that stops reading
holds at most that much memory, whatever the events' sizes.
"""

from __future__ import annotations

from collections.abc import Sequence

import trio

from pycontainerd.api import errdefs, filters
from pycontainerd.api.types import Envelope
from pycontainerd.metadata import EventRecord

QUEUE_BYTES = 16 << 20
"""A subscription's queue holds at most this many encoded event bytes (and at
least one record)."""


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

    def __init__(
        self, exchange: Exchange, flt: filters.Filter, size: int, max_bytes: int = QUEUE_BYTES
    ) -> None:
        self._exchange = exchange
        self.filter = flt
        self._tx, self._rx = trio.open_memory_channel[EventRecord](size)
        self._max_bytes = max_bytes
        self.queued_bytes = 0
        self.overflowed = False

    def offer(self, rec: EventRecord) -> None:
        if matches(self.filter, rec):
            self.put(rec)

    def put(self, rec: EventRecord) -> None:
        """Queue ``rec``, already matched (on the loop; never waits)."""
        if self.overflowed:
            return
        if self.queued_bytes and self.queued_bytes + rec.size > self._max_bytes:
            self._overflow()
            return
        try:
            self._tx.send_nowait(rec)
        except trio.WouldBlock:
            self._overflow()
        except trio.ClosedResourceError:
            pass
        else:
            self.queued_bytes += rec.size

    def _overflow(self) -> None:
        self.overflowed = True
        self._tx.close()

    async def receive(self) -> EventRecord:
        """The next live record.

        Raises:
            errdefs.ResourceExhausted: the subscriber fell too far behind.
        """
        try:
            rec = await self._rx.receive()
        except trio.EndOfChannel:
            raise errdefs.ResourceExhausted(
                "subscriber too slow: events queue full; resubscribe with since"
            ) from None
        self.queued_bytes -= rec.size
        return rec

    def close(self) -> None:
        self._exchange.unsubscribe(self)
        self._tx.close()
        self._rx.close()


class Exchange:
    """Fan-out of committed journal records to live subscriptions."""

    def __init__(self, queue_size: int = 1024, queue_bytes: int = QUEUE_BYTES) -> None:
        self.queue_size = queue_size
        self.queue_bytes = queue_bytes
        self._subs: dict[int, Subscription] = {}

    def subscribe(self, flt: filters.Filter) -> Subscription:
        sub = Subscription(self, flt, self.queue_size, self.queue_bytes)
        self._subs[id(sub)] = sub
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.pop(id(sub), None)

    def deliver(self, records: Sequence[EventRecord]) -> None:
        self.put(self.route(records))

    def route(self, records: Sequence[EventRecord]) -> list[tuple[Subscription, EventRecord]]:
        """Which subscription gets which record, in sequence order: the filters'
        work, safe in a worker thread (a snapshot of the subscriptions; their
        filters never change), so a subscriber's 128 regexes over a 1 MiB event
        cost the publisher's thread, not the event loop."""
        subs = list(self._subs.values())
        return [(sub, rec) for rec in records for sub in subs if matches(sub.filter, rec)]

    @staticmethod
    def put(routed: Sequence[tuple[Subscription, EventRecord]]) -> None:
        """Queue routed records (on the loop; never waits)."""
        for sub, rec in routed:
            sub.put(rec)

    @property
    def subscribers(self) -> int:
        return len(self._subs)
