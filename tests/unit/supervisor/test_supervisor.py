from __future__ import annotations

import pytest
import trio
import trio.testing

from pycontainerd.supervisor import (
    ActorCrashed,
    ActorRef,
    ChildSpec,
    Strategy,
    Supervisor,
    SupervisorGaveUp,
)

from ._actors import Add, Block, Boom, Counter, FailsInit, Get, Stubborn


def _specs(*names: str, restart: str = "permanent") -> list[ChildSpec]:
    return [
        ChildSpec.for_actor(lambda n=n: Counter(name=n), id=n, restart=restart)  # type: ignore[misc,arg-type]
        for n in names
    ]


def _ref(sup: Supervisor, id: str) -> ActorRef:
    child = sup.child(id)
    assert child is not None and isinstance(child.value, ActorRef)
    return child.value


async def _start(nursery: trio.Nursery, sup: Supervisor) -> None:
    Counter.inits.clear()
    await nursery.start(sup.run)


async def test_children_start_in_order_and_stop_in_reverse() -> None:
    stopped: list[str] = []

    class Noting(Counter):
        async def terminate(self, reason: BaseException | None) -> None:
            stopped.append(self.name)

    specs = [ChildSpec.for_actor(lambda n=n: Noting(name=n), id=n) for n in "abc"]  # type: ignore[misc]
    sup = Supervisor("root", specs)
    async with trio.open_nursery() as nursery:
        await _start(nursery, sup)
        assert Counter.inits == ["a", "b", "c"]
        assert [c.path for c in sup.children()] == ["root/a", "root/b", "root/c"]
        await sup.stop()
    assert stopped == ["c", "b", "a"]


async def _restarted_after_crash_of_b(strategy: Strategy) -> list[str]:
    sup = Supervisor("root", _specs("a", "b", "c"), strategy=strategy)
    async with trio.open_nursery() as nursery:
        await _start(nursery, sup)
        for n in "abc":
            await _ref(sup, n).call(Add(1))
        Counter.inits.clear()
        with pytest.raises(ActorCrashed):
            await _ref(sup, "b").call(Boom())
        await trio.testing.wait_all_tasks_blocked()
        # the refs survive; a restarted actor has lost its in-memory count
        totals = {n: await _ref(sup, n).call(Get()) for n in "abc"}
        restarted = sorted(Counter.inits)
        assert sorted(n for n, t in totals.items() if t == 0) == restarted
        assert [c.spec.id for c in sup.children()] == ["a", "b", "c"]
        await sup.stop()
    return restarted


async def test_one_for_one_restarts_only_the_failed_child() -> None:
    assert await _restarted_after_crash_of_b("one_for_one") == ["b"]


async def test_one_for_all_restarts_every_child() -> None:
    assert await _restarted_after_crash_of_b("one_for_all") == ["a", "b", "c"]


async def test_rest_for_one_restarts_the_failed_child_and_later_ones() -> None:
    assert await _restarted_after_crash_of_b("rest_for_one") == ["b", "c"]


async def test_transient_child_is_restarted_after_crash_only() -> None:
    sup = Supervisor("root", _specs("t", restart="transient"))
    async with trio.open_nursery() as nursery:
        await _start(nursery, sup)
        with pytest.raises(ActorCrashed):
            await _ref(sup, "t").call(Boom())
        assert await _ref(sup, "t").call(Get()) == 0
        await _ref(sup, "t").stop()
        await trio.testing.wait_all_tasks_blocked()
        assert sup.child("t") is None
        await sup.stop()


async def test_temporary_child_is_never_restarted() -> None:
    sup = Supervisor("root", _specs("tmp", restart="temporary"))
    async with trio.open_nursery() as nursery:
        await _start(nursery, sup)
        ref = _ref(sup, "tmp")
        with pytest.raises(ActorCrashed):
            await ref.call(Boom())
        await trio.testing.wait_all_tasks_blocked()
        assert sup.child("tmp") is None
        await sup.stop()


async def test_intensity_exhausted_stops_children_and_gives_up(autojump_clock: object) -> None:
    sup = Supervisor("root", _specs("a", "b"), intensity=2, period=10)
    with pytest.RaisesGroup(
        pytest.RaisesExc(SupervisorGaveUp, match="'b' restarted 3 times"), flatten_subgroups=True
    ):
        async with trio.open_nursery() as nursery:
            await _start(nursery, sup)
            for _ in range(3):
                with pytest.raises(ActorCrashed):
                    await _ref(sup, "b").call(Boom())
                await trio.testing.wait_all_tasks_blocked()
    assert sup.children() == []


async def test_restarts_outside_the_period_are_forgiven(autojump_clock: object) -> None:
    sup = Supervisor("root", _specs("a"), intensity=1, period=5)
    async with trio.open_nursery() as nursery:
        await _start(nursery, sup)
        for _ in range(4):
            with pytest.raises(ActorCrashed):
                await _ref(sup, "a").call(Boom())
            await trio.sleep(6)
        child = sup.child("a")
        assert child is not None and child.restarts == 4
        await sup.stop()


async def test_child_that_fails_before_ready_fails_the_start() -> None:
    sup = Supervisor("root", [ChildSpec.for_actor(FailsInit, id="f")])
    with pytest.RaisesGroup(
        pytest.RaisesExc(RuntimeError, match="cannot init"), flatten_subgroups=True
    ):
        async with trio.open_nursery() as nursery:
            await nursery.start(sup.run)


async def test_start_child_after_start_and_duplicate_id() -> None:
    from pycontainerd.api import errdefs

    sup = Supervisor("root")
    async with trio.open_nursery() as nursery:
        await _start(nursery, sup)
        ref = await sup.start_child(_specs("late")[0])
        assert await ref.call(Add(2)) == 2
        with pytest.raises(errdefs.AlreadyExists):
            await sup.start_child(_specs("late")[0])
        await sup.stop()


async def test_shutdown_timeout_cancels_a_stuck_child(autojump_clock: object) -> None:
    sup = Supervisor("root", [ChildSpec.for_actor(Stubborn, id="s", shutdown=2)])
    async with trio.open_nursery() as nursery:
        await _start(nursery, sup)
        await _ref(sup, "s").send(Block(1000))
        start = trio.current_time()
        await sup.stop()
        assert trio.current_time() - start == pytest.approx(2)


async def test_stop_drains_messages_queued_before_it() -> None:
    sup = Supervisor("root", _specs("a"))
    async with trio.open_nursery() as nursery:
        await _start(nursery, sup)
        ref = _ref(sup, "a")
        pending = [await ref.request(Add(1)) for _ in range(3)]
        await sup.stop()
        assert [await p.wait() for p in pending] == [1, 2, 3]


async def test_outer_cancel_tears_the_tree_down(autojump_clock: object) -> None:
    inner = Supervisor("inner", _specs("x"))
    outer = Supervisor("root", [ChildSpec.for_supervisor(inner)])
    with trio.move_on_after(5):
        async with trio.open_nursery() as nursery:
            await _start(nursery, outer)
            assert [c.path for c in inner.children()] == ["root/inner/x"]
            await trio.sleep_forever()
    assert inner.children() and outer.children()  # cancelled, not stopped: no restarts
    child = outer.child("inner")
    assert child is not None and child.restarts == 0


async def test_nested_supervisor_gives_up_and_parent_restarts_it(autojump_clock: object) -> None:
    inner = Supervisor("inner", _specs("x"), intensity=0, period=10)
    outer = Supervisor("root", [ChildSpec.for_supervisor(inner)], intensity=3, period=10)
    async with trio.open_nursery() as nursery:
        await _start(nursery, outer)
        x = _ref(inner, "x")
        with pytest.raises(ActorCrashed):
            await x.call(Boom())
        await trio.testing.wait_all_tasks_blocked()
        child = outer.child("inner")
        assert child is not None and child.restarts == 1
        assert await x.call(Add(7)) == 7  # the inner child's ref is still good
        await outer.stop()
