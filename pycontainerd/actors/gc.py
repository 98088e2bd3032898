"""The garbage collection scheduler (containerd ``gc/scheduler``).

Services tell it about changes with :class:`Mutation` (``dirty`` for a
deletion: a lease, an image, a blob removed from a namespace). It collects:

- after ``startup_delay`` once the daemon is up;
- after ``schedule_delay`` once ``deletion_threshold`` deletions or
  ``mutation_threshold`` mutations have been seen (0 disables a threshold);
- otherwise, when any deletion happened, at the next interval: the interval
  keeps collection time at ``pause_threshold`` of wall time
  (``avg_gc / pause_threshold - avg_gc``, the average at least 5 ms; 1 s
  before the first collection);
- at once for a :class:`Collect` (``leases.delete`` / ``images.delete`` with
  ``sync``), which answers when a collection that started after the request
  has finished.

A collection runs :func:`pycontainerd.metadata.collect_garbage` in a worker
thread: the mark and sweep is one metadata transaction, then the bytes no
namespace references are removed.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

import attrs
import trio

from pycontainerd.api import errdefs
from pycontainerd.content import LocalStore
from pycontainerd.metadata import GcResult, collect_garbage
from pycontainerd.supervisor import Actor, ActorRef, MailboxFull

from .metadata import ActorRunner

log = logging.getLogger("pycontainerd.gc")

MINIMUM_GC_TIME = 0.005


@attrs.frozen
class Mutation:
    dirty: bool = False
    """A deletion: guarantees a collection at the next interval."""


def notify(gc: ActorRef | None, *, dirty: bool = False) -> None:
    """Tell the collector about a change, without waiting (services call it after
    a commit or a deletion). A hint: a collector whose mailbox is full or closed
    collects soon anyway, or not at all."""
    if gc is not None:
        with contextlib.suppress(MailboxFull, errdefs.ErrdefsError):
            gc.send_nowait(Mutation(dirty))


@attrs.frozen
class Collect:
    """Collect now and answer with the :class:`GcResult` (``sync`` deletes)."""


@attrs.frozen(kw_only=True)
class SchedulerConfig:
    pause_threshold: float = 0.02
    deletion_threshold: int = 0
    mutation_threshold: int = 100
    schedule_delay: float = 0.0
    startup_delay: float = 0.1


class GcScheduler(Actor):
    def __init__(
        self,
        metadata: ActorRef,
        backend: LocalStore,
        config: SchedulerConfig,
        remove_snapshots: Callable[[list[tuple[str, str, str, str]]], None] | None = None,
    ) -> None:
        super().__init__(name="scheduler", mailbox_size=1024)
        self._runner = ActorRunner(metadata)
        self._backend = backend
        self.config = attrs.evolve(
            config, pause_threshold=min(max(config.pause_threshold, 0.0), 0.5)
        )
        self._remove_snapshots = remove_snapshots
        self._deletions = 0
        self._mutations = 0
        self._interval = 1.0
        self._gc_time = 0.0
        self.collections = 0
        self._due: float | None = None
        self._wake = trio.Event()
        self._finished = trio.Condition()
        self._generation = 0
        self.last: GcResult | None = None

    async def init(self) -> None:
        self._schedule(self.config.startup_delay)
        self.start_soon(self._timer)

    def _schedule(self, delay: float) -> None:
        due = trio.current_time() + delay
        if self._due is None or due < self._due:
            self._due = due
            self._wake.set()

    async def on_mutation(self, msg: Mutation) -> None:
        c = self.config
        if msg.dirty:
            self._deletions += 1
        else:
            self._mutations += 1
        if (c.deletion_threshold > 0 and self._deletions >= c.deletion_threshold) or (
            c.mutation_threshold > 0 and self._mutations >= c.mutation_threshold
        ):
            self._schedule(c.schedule_delay)
        elif self._deletions:
            self._schedule(self._interval)

    async def on_collect(self, msg: Collect) -> object:
        wanted = self._generation + (2 if self._running else 1)
        self._schedule(0)

        async def wait() -> GcResult | None:
            async with self._finished:
                while self._generation < wanted:
                    await self._finished.wait()
            return self.last

        return self.defer(wait)

    handlers = {Mutation: on_mutation, Collect: on_collect}

    async def wait_collected(self, count: int) -> None:
        """Until ``count`` collections have finished since the actor started."""
        async with self._finished:
            while self._generation < count:
                await self._finished.wait()

    _running = False

    async def _timer(self) -> None:
        while True:
            if self._due is None:
                await self._wake.wait()
                self._wake = trio.Event()
                continue
            with trio.move_on_at(self._due):
                await self._wake.wait()
                self._wake = trio.Event()
                continue
            self._due = None
            await self._collect()

    async def _collect(self) -> None:
        self._running = True
        self._deletions = self._mutations = 0
        start = trio.current_time()
        try:
            self.last = await self.run_sync_in_thread(
                collect_garbage, self._runner, self._backend, self._remove_snapshots
            )
        except Exception:
            log.exception("garbage collection failed")
        finally:
            self._running = False
        elapsed = trio.current_time() - start
        self._gc_time += elapsed
        self.collections += 1
        if self.config.pause_threshold > 0:
            avg = max(self._gc_time / self.collections, MINIMUM_GC_TIME)
            self._interval = avg / self.config.pause_threshold - avg
        if self.last is not None and self.last.removed:
            log.info(
                "garbage collected",
                extra={
                    "content": len(self.last.content),
                    "snapshots": len(self.last.snapshots),
                    "leases": len(self.last.leases),
                    "ingests": len(self.last.ingests),
                    "seconds": round(elapsed, 4),
                },
            )
        async with self._finished:
            self._generation += 1
            self._finished.notify_all()
