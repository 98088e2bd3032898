"""The GC scheduler actor: when it collects (containerd's ``gc/scheduler``)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import pytest
import trio

from pycontainerd.actors.exchange import Exchange
from pycontainerd.actors.gc import Collect, GcScheduler, Mutation, SchedulerConfig
from pycontainerd.actors.metadata import MetadataActor, Update
from pycontainerd.content import LocalStore
from pycontainerd.metadata import Transaction, tables
from pycontainerd.supervisor import ActorRef, ChildSpec, Supervisor

NS = "sched"


@attrs.define
class Env:
    metadata: ActorRef
    gc: ActorRef
    scheduler: GcScheduler
    backend: LocalStore

    async def put(self, data: bytes) -> str:
        with self.backend.writer(f"w-{len(data)}-{data[:8]!r}") as w:
            w.write(data)
            d = await trio.to_thread.run_sync(w.commit)

        def link(tx: Transaction) -> None:
            tables.content.add_blob(tx, NS, d, len(data), {}, None)

        await self.metadata.call(Update(link))
        return d


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    backend = LocalStore(tmp_path / "content")
    config = SchedulerConfig(startup_delay=3600, mutation_threshold=3, pause_threshold=0.02)
    holder: list[GcScheduler] = []

    def make_gc(md: ActorRef) -> GcScheduler:
        holder.append(GcScheduler(md, backend, config))
        return holder[-1]

    sup = Supervisor("root", [])
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        md = await sup.start_child(
            ChildSpec.for_actor(
                lambda: MetadataActor(tmp_path / "meta.db", Exchange(16)), id="metadata"
            )
        )
        gc = await sup.start_child(ChildSpec.for_actor(lambda: make_gc(md), id="gc"))
        yield Env(md, gc, holder[-1], backend)
        await sup.stop()
        nursery.cancel_scope.cancel()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def test_collect_runs_now_and_answers_with_what_it_removed(env: Env) -> None:
    d = await env.put(b"nobody holds me")
    result = await env.gc.call(Collect())
    assert result.content == [(NS, d)]
    assert not env.backend.exists(d)
    assert env.scheduler.collections == 1


async def test_mutation_threshold_triggers_a_collection(env: Env) -> None:
    d = await env.put(b"collected after three mutations")
    for _ in range(2):
        await env.gc.send(Mutation())
    await trio.sleep(0.2)
    assert env.scheduler.collections == 0 and env.backend.exists(d)
    await env.gc.send(Mutation())
    with trio.fail_after(5):
        await env.scheduler.wait_collected(1)
    assert not env.backend.exists(d)


async def test_a_deletion_guarantees_the_next_scheduled_collection(env: Env) -> None:
    d = await env.put(b"collected at the next interval")
    await env.gc.send(Mutation(dirty=True))
    # the first interval is 1 s (before any collection has been timed)
    await trio.sleep(0.5)
    assert env.scheduler.collections == 0
    with trio.fail_after(5):
        await env.scheduler.wait_collected(1)
    assert not env.backend.exists(d)
    assert env.scheduler.last is not None and env.scheduler.last.content == [(NS, d)]


async def test_pause_threshold_sets_the_interval_from_collection_time(env: Env) -> None:
    await env.gc.call(Collect())
    # avg at least 5 ms: interval = avg / 0.02 - avg >= 0.245 s
    assert env.scheduler._interval >= 0.245
