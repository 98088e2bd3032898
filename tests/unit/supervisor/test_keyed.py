from __future__ import annotations

import pytest
import trio
import trio.testing

from pycontainerd.supervisor import ActorCrashed, ChildSpec, KeyedSupervisor, Supervisor

from ._actors import Add, Block, Boom, Counter, Get

Key = tuple[str, str]


def _keyed(idle_timeout: float | None = None) -> KeyedSupervisor[Key]:
    return KeyedSupervisor(
        "containers", lambda key: Counter(name=key[1]), idle_timeout=idle_timeout
    )


async def test_child_is_activated_by_its_first_message() -> None:
    keyed = _keyed()
    async with trio.open_nursery() as nursery:
        await nursery.start(keyed.run)
        assert keyed.get(("default", "a")) is None
        assert await keyed.call(("default", "a"), Add(2)) == 2
        assert await keyed.call(("default", "a"), Add(2)) == 4
        assert await keyed.call(("other", "a"), Get()) == 0
        assert sorted(keyed.keys()) == [("default", "a"), ("other", "a")]
        assert [c.path for c in keyed.children()] == [
            "containers/default/a",
            "containers/other/a",
        ]
        await keyed.stop()


async def test_concurrent_first_messages_start_one_child() -> None:
    keyed = _keyed()
    Counter.inits.clear()
    async with trio.open_nursery() as nursery:
        await nursery.start(keyed.run)
        async with trio.open_nursery() as senders:
            for _ in range(10):
                senders.start_soon(keyed.call, ("ns", "x"), Add(1))
        assert await keyed.call(("ns", "x"), Get()) == 10
        assert Counter.inits == ["x"]
        await keyed.stop()


async def test_keys_run_in_parallel_and_one_key_in_order(autojump_clock: object) -> None:
    keyed = _keyed()
    async with trio.open_nursery() as nursery:
        await nursery.start(keyed.run)
        start = trio.current_time()
        async with trio.open_nursery() as senders:
            for i in range(5):
                senders.start_soon(keyed.call, ("ns", f"k{i}"), Block(3))
        assert trio.current_time() - start == pytest.approx(3)
        await keyed.stop()


async def test_idle_child_is_passivated_and_reactivated(autojump_clock: object) -> None:
    keyed = _keyed(idle_timeout=30)
    Counter.inits.clear()
    async with trio.open_nursery() as nursery:
        await nursery.start(keyed.run)
        await keyed.call(("ns", "p"), Add(5))
        await trio.sleep(20)
        assert await keyed.call(("ns", "p"), Get()) == 5  # activity resets the clock
        await trio.sleep(20)
        assert keyed.get(("ns", "p")) is not None
        await trio.sleep(15)
        assert keyed.get(("ns", "p")) is None
        assert keyed.children() == []
        # the next message starts a fresh actor (state would be reloaded from disk)
        assert await keyed.call(("ns", "p"), Get()) == 0
        assert Counter.inits == ["p", "p"]
        await keyed.stop()


async def test_busy_child_is_not_passivated(autojump_clock: object) -> None:
    keyed = _keyed(idle_timeout=1)
    async with trio.open_nursery() as nursery:
        await nursery.start(keyed.run)
        ref = await keyed.ref(("ns", "b"))
        await ref.send(Block(10))
        await ref.send(Add(1))
        await trio.sleep(5)
        assert keyed.get(("ns", "b")) is ref
        assert await ref.call(Get()) == 1
        await keyed.stop()


async def test_crashed_child_is_restarted_under_the_same_key() -> None:
    keyed = _keyed()
    async with trio.open_nursery() as nursery:
        await nursery.start(keyed.run)
        ref = await keyed.ref(("ns", "c"))
        with pytest.raises(ActorCrashed):
            await keyed.call(("ns", "c"), Boom())
        await trio.testing.wait_all_tasks_blocked()
        assert keyed.get(("ns", "c")) is ref
        child = keyed.child("ns/c")
        assert child is not None and child.restarts == 1
        await keyed.stop()


async def test_a_crash_looping_key_never_escalates(autojump_clock: object) -> None:
    """A client repeating a request that crashes one key's actor (or many keys')
    stops that key, never the keyed supervisor, its siblings or the root."""
    keyed = _keyed()
    spec = ChildSpec.for_supervisor(keyed)
    root = Supervisor("root", [spec], strategy="rest_for_one", intensity=3, period=30.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(root.run)
        await keyed.call(("ns", "sibling"), Add(7))
        for i in range(60):
            with pytest.raises(ActorCrashed):
                await keyed.call(("ns", "bad"), Boom())
            with pytest.raises(ActorCrashed):
                await keyed.call(("ns", f"other{i}"), Boom())
            await trio.testing.wait_all_tasks_blocked()
        child = root.child("containers")
        assert child is not None and child.restarts == 0 and child.status == "running"
        assert await keyed.call(("ns", "sibling"), Get()) == 7
        # the crash-looping key was stopped, then started afresh by its next message
        assert await keyed.call(("ns", "bad"), Add(1)) == 1
        await root.stop()


async def test_stop_key_forgets_the_child() -> None:
    keyed = _keyed()
    async with trio.open_nursery() as nursery:
        await nursery.start(keyed.run)
        await keyed.call(("ns", "s"), Add(1))
        await keyed.stop_key(("ns", "s"))
        assert keyed.get(("ns", "s")) is None
        assert await keyed.call(("ns", "s"), Get()) == 0
        await keyed.stop()


async def test_children_stop_in_parallel(autojump_clock: object) -> None:
    keyed: KeyedSupervisor[str] = KeyedSupervisor("k", lambda key: Counter(name=key), shutdown=4)
    root = Supervisor("root", [ChildSpec.for_supervisor(keyed)])
    async with trio.open_nursery() as nursery:
        await nursery.start(root.run)
        for i in range(5):
            await (await keyed.ref(f"k{i}")).send(Block(100))
        start = trio.current_time()
        await root.stop()
        assert trio.current_time() - start == pytest.approx(4)
