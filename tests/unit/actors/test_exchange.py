"""The live exchange: a subscription's queue is bounded in records and in bytes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pycontainerd.actors.exchange import Exchange
from pycontainerd.api import errdefs, filters
from pycontainerd.metadata import EventRecord

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def _rec(sequence: int, size: int) -> EventRecord:
    return EventRecord(
        sequence=sequence, timestamp=T0, namespace="ns", topic="/t", event={}, size=size
    )


async def test_a_queue_past_its_bytes_ends_the_subscriber() -> None:
    exchange = Exchange(queue_size=100, queue_bytes=1000)
    sub = exchange.subscribe(filters.parse_all([]))
    exchange.deliver([_rec(1, 600), _rec(2, 400)])
    assert sub.queued_bytes == 1000 and not sub.overflowed
    assert (await sub.receive()).sequence == 1
    assert sub.queued_bytes == 400
    exchange.deliver([_rec(3, 601)])
    assert sub.overflowed
    assert (await sub.receive()).sequence == 2
    with pytest.raises(errdefs.ResourceExhausted, match="resubscribe with since"):
        await sub.receive()
    sub.close()
    assert exchange.subscribers == 0


async def test_one_record_larger_than_the_budget_is_still_delivered() -> None:
    exchange = Exchange(queue_size=100, queue_bytes=10)
    sub = exchange.subscribe(filters.parse_all([]))
    exchange.deliver([_rec(1, 50)])
    assert (await sub.receive()).sequence == 1
    assert sub.queued_bytes == 0
    sub.close()


async def test_a_queue_past_its_records_ends_the_subscriber() -> None:
    exchange = Exchange(queue_size=2)
    sub = exchange.subscribe(filters.parse_all([]))
    exchange.deliver([_rec(1, 1), _rec(2, 1), _rec(3, 1)])
    assert sub.overflowed
    sub.close()
