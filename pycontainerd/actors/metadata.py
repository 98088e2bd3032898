"""The metadata actor: sole owner and writer of the sqlite database.

Every change to namespaced metadata is an :class:`Update` — a function run in
one sqlite transaction — and every read a :class:`View`. Both go through this
actor's mailbox, so the order requests were sent on a connection is the order
they see the database in (a ``View`` sent after an ``Update`` sees it). After
each commit the events the transaction journalled are handed to the
:class:`~pycontainerd.actors.events.Exchange` before the next message is
handled, so live subscribers see them in sequence order.

A request's failure is that request's, never the actor's. Store failures reach
the caller as their domain errors (a full disk is ``ResourceExhausted``: see
:func:`pycontainerd.metadata.store_errors`); any other exception raised by an
``Update`` or ``View`` function is a bug in that request: it is logged with its
traceback and answered ``Internal``, and the transaction is rolled back, so the
database is as before and the actor keeps serving. Only a failure of the
actor's own machinery (a rollback that fails, the fan-out of committed events)
crashes it, for its supervisor to restart: the root's restart intensity is for
the daemon's own children failing, not for a client's requests.

sqlite runs in a worker thread, one message at a time (a capacity limiter of
one): scans, filters (linear but not free: 128 long regexes over 2000 images is
a second of work) and the collector's mark and sweep never hold the event loop.
Only a view marked ``on_loop`` runs on it, for loop-side state that must change
atomically with what it reads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import attrs
import trio

from pycontainerd.api import errdefs
from pycontainerd.metadata import Database, EventRecord, Queryable, Transaction, store_errors
from pycontainerd.supervisor import Actor, ActorRef

from .exchange import Exchange, Subscription

log = logging.getLogger("pycontainerd.metadata")


@attrs.frozen
class Update:
    """Run ``fn(tx)`` in one transaction (in the database's thread); its
    journalled events go live after commit."""

    fn: Callable[[Transaction], Any]


@attrs.frozen
class View:
    """Run ``fn(db)`` read-only, in mailbox order with the updates.

    ``fn`` runs in the database's thread, like an update's, unless ``on_loop``:
    for the rare view that must touch loop-side state atomically with the
    journal (an events subscription registered at the head it reads).
    """

    fn: Callable[[Database], Any]
    on_loop: bool = False


T = TypeVar("T")


class ActorRunner:
    """A :class:`pycontainerd.metadata.Runner` for worker threads: each call is
    an :class:`Update` or :class:`View` message to the metadata actor, so the
    stores' synchronous code (the namespaced content store, the collector) runs
    unchanged in the daemon."""

    def __init__(self, ref: ActorRef) -> None:
        self.ref = ref

    def update(self, fn: Callable[[Transaction], T]) -> T:
        result: T = trio.from_thread.run(self.ref.call, Update(fn))
        return result

    def view(self, fn: Callable[[Queryable], T]) -> T:
        result: T = trio.from_thread.run(self.ref.call, View(fn))
        return result


class MetadataActor(Actor):
    """Owns ``<root>/io.containerd.metadata.v1.sqlite/meta.db``."""

    def __init__(self, path: Path, exchange: Exchange) -> None:
        super().__init__(name="metadata", mailbox_size=1024)
        self._path = path
        self._exchange = exchange
        self._db: Database | None = None
        # one thread at a time runs sqlite: scans, filters and the collector's
        # mark and sweep never hold the event loop (messages are handled one at
        # a time, so the database sees one caller, in mailbox order)
        self._thread = trio.CapacityLimiter(1)

    @property
    def db(self) -> Database:
        assert self._db is not None, "metadata actor not initialised"
        return self._db

    async def init(self) -> None:
        self._db = Database.open(self._path)

    async def terminate(self, reason: BaseException | None) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    async def on_update(self, msg: Update) -> Any:
        db = self.db

        exchange = self._exchange

        def run() -> tuple[Any, list[tuple[Subscription, EventRecord]]]:
            with db.transaction() as tx:
                result = msg.fn(tx)
            return result, exchange.route(tx.published)

        try:
            result, routed = await trio.to_thread.run_sync(run, limiter=self._thread)
        except errdefs.ErrdefsError:
            raise
        except Exception as exc:
            raise self._failed(msg.fn, exc) from exc
        exchange.put(routed)
        return result

    async def on_view(self, msg: View) -> Any:
        db = self.db

        def run() -> Any:
            with store_errors():
                return msg.fn(db)

        try:
            if msg.on_loop:
                return run()
            return await trio.to_thread.run_sync(run, limiter=self._thread)
        except errdefs.ErrdefsError:
            raise
        except Exception as exc:
            raise self._failed(msg.fn, exc) from exc

    def _failed(self, fn: Callable[..., Any], exc: Exception) -> errdefs.ErrdefsError:
        """The caller's answer to a bug in its request (``exc`` from ``fn``); the
        actor goes on unless the bug left the database mid-transaction."""
        if not self.db.idle:
            raise exc  # closed, or the rollback failed: the actor's own state is broken
        name = getattr(fn, "__qualname__", type(fn).__name__)
        log.error("%s: %s failed", self.path, name, exc_info=exc)
        return errdefs.Internal(f"metadata: {name} failed: {type(exc).__name__}")

    handlers = {Update: on_update, View: on_view}
