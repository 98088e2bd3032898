"""Events: the journal trimmer and the ``events.*`` service.

Every event is first appended to the durable journal by the metadata actor, in
the transaction of the change it describes, and gets its ``sequence``; after
the commit the :class:`~pycontainerd.actors.exchange.Exchange` fans it out live.

``events.subscribe`` with ``since`` registers its live subscription and reads
the journal head in one metadata ``View`` (no commit can come in between),
replays the journal ``(since, head]``, then continues live: no gap, no
duplicate, across daemon restarts since the journal is on disk. The replay
reads the journal a page at a time (:data:`REPLAY_BATCH` events or
:data:`REPLAY_PAGE_BYTES`), and sends each page before it reads the next, so a
subscriber costs one page of memory however much it replays.

A client's event (``events.publish``, ``events.forward``) is at most
:data:`~pycontainerd.api.events.MAX_EVENT_SIZE` encoded.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

import attrs
import trio

from pycontainerd.api import errdefs, filters
from pycontainerd.api import events as api
from pycontainerd.api.rpc import Call, Wait
from pycontainerd.api.types import Empty
from pycontainerd.metadata import EventRecord, Transaction
from pycontainerd.metadata import events as journal
from pycontainerd.supervisor import Actor, ActorRef

from ._service import ask
from .exchange import Exchange, Subscription, envelope, matches
from .metadata import Update, View

if TYPE_CHECKING:
    from pycontainerd.metadata import Database

log = logging.getLogger("pycontainerd.events")

REPLAY_BATCH = 512
"""Events read from the journal per page of a replay, at most."""
REPLAY_PAGE_BYTES = 4 << 20
"""Encoded bytes per page of a replay, at most (a page holds at least one event)."""


@attrs.frozen
class Trim:
    """Trim the journal now (also sent by the actor's own timer)."""


class EventsActor(Actor):
    """Trims the journal by age and size on a schedule."""

    def __init__(
        self,
        metadata: ActorRef,
        *,
        max_age: float | None,
        max_events: int | None,
        interval: float,
    ) -> None:
        super().__init__(name="events", mailbox_size=16)
        self._metadata = metadata
        self._max_age = max_age
        self._max_events = max_events
        self._interval = interval

    async def init(self) -> None:
        self.start_soon(self._timer)

    async def _timer(self) -> None:
        while True:
            await trio.sleep(self._interval)
            await self.on_trim(Trim())

    async def on_trim(self, msg: Trim) -> int:
        max_age, max_events = self._max_age, self._max_events

        def trim(tx: Transaction) -> int:
            return journal.trim(tx, max_age=max_age, max_events=max_events, now=datetime.now(UTC))

        removed: int = await self._metadata.call(Update(trim))
        if removed:
            log.info("journal trimmed: %d events removed", removed)
        return removed

    handlers = {Trim: on_trim}


PARSE_ON_LOOP = 4096
"""Characters of filters a subscription parses on the event loop; longer ones
are parsed (their regexes compiled) in a worker thread."""


class EventsService:
    """``events.publish``, ``events.forward`` and ``events.subscribe``."""

    def __init__(self, metadata: ActorRef, exchange: Exchange) -> None:
        self._metadata = metadata
        self._exchange = exchange

    def methods(self) -> dict[str, Any]:
        return {
            "events.publish": self.publish,
            "events.forward": self.forward,
            "events.subscribe": self.subscribe,
        }

    async def publish(self, call: Call) -> Wait:
        req: api.PublishRequest = call.request
        ns = call.namespace

        # refused here, before a large event crosses to the database's thread
        journal.check_client_event(req.topic, req.event, api.MAX_EVENT_SIZE)

        def write(tx: Transaction) -> None:
            journal.publish(tx, ns, req.topic, req.event, max_size=api.MAX_EVENT_SIZE)

        return await ask(self._metadata, Update(write))

    async def forward(self, call: Call) -> Wait:
        env = call.request.envelope
        journal.check_client_event(env.topic, env.event, api.MAX_EVENT_SIZE)

        def write(tx: Transaction) -> None:
            journal.forward(
                tx,
                env.namespace,
                env.topic,
                env.timestamp,
                env.event,
                max_size=api.MAX_EVENT_SIZE,
            )

        return await ask(self._metadata, Update(write))

    async def subscribe(self, call: Call) -> Wait:
        req: api.SubscribeRequest = call.request
        if sum(map(len, req.filters)) <= PARSE_ON_LOOP:
            flt = filters.parse_all(req.filters)
        else:  # compiling 128 long regexes is a fraction of a second: not on the loop
            flt = await trio.to_thread.run_sync(filters.parse_all, req.filters)
        since = req.since
        if since is not None and since < 0:
            raise errdefs.InvalidArgument("since must be >= 0")
        exchange = self._exchange

        def register(db: Database) -> tuple[Subscription, int]:
            if since is not None:
                journal.check_since(db, since)
            return exchange.subscribe(flt), journal.head(db)

        pending = await self._metadata.request(View(register, on_loop=True))

        async def wait() -> Empty:
            sub, head = await pending.wait()
            try:
                if since is not None:
                    await self._replay(call, flt, since, head)
                return await self._live(call, sub)
            finally:
                sub.close()

        return wait

    async def _replay(self, call: Call, flt: filters.Filter, since: int, head: int) -> None:
        assert call.stream is not None
        last = since
        while last < head:

            def read(db: Database, after: int = last) -> list[tuple[EventRecord, bool]]:
                # matched in the database's thread, like the live records
                page = journal.read_after(db, after, REPLAY_BATCH, max_bytes=REPLAY_PAGE_BYTES)
                return [(rec, matches(flt, rec)) for rec in page]

            batch: list[tuple[EventRecord, bool]] = await self._metadata.call(View(read))
            if not batch:
                return
            for rec, matched in batch:
                if rec.sequence > head:
                    return
                if matched:
                    await call.stream.send(envelope(rec))
                last = rec.sequence

    async def _live(self, call: Call, sub: Subscription) -> NoReturn:
        """Stream live records until the subscriber cancels or falls behind."""
        assert call.stream is not None
        while True:
            rec = await sub.receive()
            await call.stream.send(envelope(rec))
