"""The metadata actor: a request's failure is answered to that request, never a crash."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
import trio.testing

from pycontainerd.actors.exchange import Exchange
from pycontainerd.actors.metadata import MetadataActor, Update, View
from pycontainerd.api import errdefs
from pycontainerd.metadata import Database, Queryable, Transaction
from pycontainerd.metadata.tables import namespaces
from pycontainerd.supervisor import ActorCrashed, ActorRef, ChildSpec, Supervisor


@pytest.fixture
async def sup_and_ref(tmp_path: Path) -> AsyncIterator[tuple[Supervisor, ActorRef]]:
    # the daemon's root: 3 restarts in 30 s, then it gives up
    sup = Supervisor("root", [], intensity=3, period=30.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        ref = await sup.start_child(
            ChildSpec.for_actor(
                lambda: MetadataActor(tmp_path / "meta.db", Exchange(16)), id="metadata"
            )
        )
        yield sup, ref
        await sup.stop()
        nursery.cancel_scope.cancel()


def _names(db: Database) -> list[str]:
    return [n.name for n in namespaces.list(db)]


async def test_a_bug_in_an_update_answers_internal_and_rolls_back(
    sup_and_ref: tuple[Supervisor, ActorRef],
) -> None:
    sup, ref = sup_and_ref

    def buggy(tx: Transaction) -> None:
        namespaces.create(tx, "half", {})
        raise KeyError("a bug")

    for _ in range(10):  # far beyond the root's intensity
        with pytest.raises(errdefs.Internal, match="buggy failed: KeyError") as info:
            await ref.call(Update(buggy))
        assert not isinstance(info.value, ActorCrashed)
    assert sup.restarts == 0
    assert await ref.call(View(_names)) == []


async def test_a_bug_in_a_view_answers_internal(sup_and_ref: tuple[Supervisor, ActorRef]) -> None:
    sup, ref = sup_and_ref

    def broken(db: Queryable) -> None:
        db.execute("SELECT * FROM nowhere")

    for _ in range(5):
        with pytest.raises(errdefs.Internal, match=r"broken failed: OperationalError"):
            await ref.call(View(broken))
    assert sup.restarts == 0


async def test_store_errors_reach_the_caller_as_domain_errors(
    sup_and_ref: tuple[Supervisor, ActorRef],
) -> None:
    sup, ref = sup_and_ref

    def cap(db: Database) -> None:
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {int(pages) + 1}")

    def big(tx: Transaction) -> None:
        namespaces.create(tx, "big", {f"k{i}": "v" * 4000 for i in range(50)})

    def overflow(tx: Transaction) -> None:
        tx.execute("INSERT INTO journal_meta VALUES (?, ?)", ("x", 2**63))

    def small(tx: Transaction) -> None:
        namespaces.create(tx, "small", {})

    await ref.call(View(cap))
    for _ in range(6):
        with pytest.raises(errdefs.ResourceExhausted):
            await ref.call(Update(big))
        with pytest.raises(errdefs.InvalidArgument):
            await ref.call(Update(overflow))
    assert sup.restarts == 0

    def uncap(db: Database) -> None:
        db.execute("PRAGMA max_page_count = 1073741823")

    await ref.call(View(uncap))
    await ref.call(Update(small))
    assert await ref.call(View(_names)) == ["small"]


async def test_a_broken_rollback_still_crashes_the_actor(
    sup_and_ref: tuple[Supervisor, ActorRef],
) -> None:
    """The actor's own machinery failing is a crash, for the supervisor to restart."""
    sup, ref = sup_and_ref

    def close_behind(db: Database) -> None:
        db.close()  # the connection the actor owns is gone
        raise sqlite3.ProgrammingError("a bug")

    def small(tx: Transaction) -> None:
        namespaces.create(tx, "small", {})

    with pytest.raises(ActorCrashed):
        await ref.call(View(close_behind))
    await trio.testing.wait_all_tasks_blocked()
    assert sup.restarts == 1
    ref = sup.child("metadata").value  # type: ignore[union-attr]
    await ref.call(Update(small))  # restarted: the database is open again
