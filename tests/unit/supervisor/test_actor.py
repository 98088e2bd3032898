from __future__ import annotations

import pytest
import trio
import trio.testing

from pycontainerd.api import errdefs
from pycontainerd.supervisor import (
    ActorCrashed,
    ActorRef,
    ChildSpec,
    MailboxClosed,
    MailboxFull,
    Supervisor,
)

from ._actors import Add, Block, Boom, Counter, Get, Refuse, Slow


async def _one(nursery: trio.Nursery, mailbox_size: int = 4) -> tuple[Supervisor, ActorRef]:
    sup = Supervisor(
        "root", [ChildSpec.for_actor(lambda: Counter(mailbox_size=mailbox_size), id="c")]
    )
    await nursery.start(sup.run)
    child = sup.child("c")
    assert child is not None and isinstance(child.value, ActorRef)
    return sup, child.value


async def test_call_returns_the_handler_result() -> None:
    async with trio.open_nursery() as nursery:
        sup, ref = await _one(nursery)
        assert await ref.call(Add(2)) == 2
        assert await ref.call(Add(3)) == 5
        await sup.stop()


async def test_domain_error_reaches_the_caller_and_the_actor_lives_on() -> None:
    async with trio.open_nursery() as nursery:
        sup, ref = await _one(nursery)
        await ref.call(Add(1))
        with pytest.raises(errdefs.FailedPrecondition, match="refused"):
            await ref.call(Refuse())
        assert await ref.call(Get()) == 1
        child = sup.child("c")
        assert child is not None and child.restarts == 0
        await sup.stop()


async def test_crash_answers_internal_and_restart_keeps_the_ref(autojump_clock: object) -> None:
    async with trio.open_nursery() as nursery:
        sup, ref = await _one(nursery)
        await ref.call(Add(5))
        with pytest.raises(ActorCrashed) as info:
            await ref.call(Boom())
        assert isinstance(info.value, errdefs.Internal)
        assert isinstance(info.value.__cause__, RuntimeError)
        # the same ref reaches the restarted instance, whose state starts fresh
        assert await ref.call(Get()) == 0
        child = sup.child("c")
        assert child is not None and child.restarts == 1
        await sup.stop()


async def test_unknown_message_is_not_implemented() -> None:
    async with trio.open_nursery() as nursery:
        sup, ref = await _one(nursery)
        with pytest.raises(errdefs.NotImplemented_, match="no handler for str"):
            await ref.call("what")
        await sup.stop()


async def test_deferred_answer_does_not_block_the_mailbox(autojump_clock: object) -> None:
    async with trio.open_nursery() as nursery:
        sup, ref = await _one(nursery)
        slow = await ref.request(Slow(10))
        start = trio.current_time()
        assert await ref.call(Add(1)) == 1
        assert trio.current_time() - start < 1
        assert await slow.wait() == "slow done"
        assert trio.current_time() - start == pytest.approx(10)
        await sup.stop()


async def test_requests_from_one_task_are_handled_in_order() -> None:
    async with trio.open_nursery() as nursery:
        sup, ref = await _one(nursery, mailbox_size=64)
        pending = [await ref.request(Add(1)) for _ in range(20)]
        assert [await p.wait() for p in pending] == list(range(1, 21))
        await sup.stop()


async def test_full_mailbox_blocks_send_and_refuses_send_nowait(autojump_clock: object) -> None:
    async with trio.open_nursery() as nursery:
        sup, ref = await _one(nursery, mailbox_size=2)
        await ref.send(Block(5))
        await trio.testing.wait_all_tasks_blocked()
        await ref.send(Add(1))
        await ref.send(Add(1))
        with pytest.raises(MailboxFull):
            ref.send_nowait(Add(1))
        blocked_until = 0.0

        async def sender() -> None:
            nonlocal blocked_until
            await ref.send(Add(1))
            blocked_until = trio.current_time()

        nursery.start_soon(sender)
        await trio.testing.wait_all_tasks_blocked()
        assert blocked_until == 0.0  # backpressure: still waiting
        assert await ref.call(Get()) == 3
        assert blocked_until == pytest.approx(5)
        stats = ref.statistics()
        assert stats.capacity == 2 and stats.peak_depth == 2
        await sup.stop()


async def test_stopped_actor_refuses_new_messages_and_fails_queued_ones() -> None:
    async with trio.open_nursery() as nursery:
        sup, ref = await _one(nursery)
        await sup.stop()
        with pytest.raises(MailboxClosed):
            await ref.call(Get())
        assert isinstance(MailboxClosed("x"), errdefs.Unavailable)


async def test_cancelled_caller_does_not_hurt_the_actor(autojump_clock: object) -> None:
    async with trio.open_nursery() as nursery:
        sup, ref = await _one(nursery)
        with trio.move_on_after(1):
            await ref.call(Slow(5))
        assert await ref.call(Add(1)) == 1
        await sup.stop()


async def test_repr_shows_path_and_mailbox() -> None:
    async with trio.open_nursery() as nursery:
        sup, ref = await _one(nursery)
        assert repr(ref) == "<ActorRef 'root/c' mailbox=0/4>"
        assert repr(ref.actor) == "<Counter 'root/c' mailbox=0/4>"
        await sup.stop()


class _Payload:
    """A stand-in for a large request (weak-referenceable)."""


async def test_a_domain_error_leaves_no_cycle_holding_the_request() -> None:
    """A refused request is freed at once, not when the cyclic collector next runs
    (the daemon runs it rarely: a rejected 16 MiB event stayed alive)."""
    import gc
    import weakref

    async with trio.open_nursery() as nursery:
        sup, ref = await _one(nursery)
        payload = _Payload()
        alive = weakref.ref(payload)
        msg = Refuse(payload)
        del payload
        gc.disable()
        try:
            with pytest.raises(errdefs.FailedPrecondition):
                await ref.call(msg)
            del msg
            await trio.testing.wait_all_tasks_blocked()
            assert alive() is None
        finally:
            gc.enable()
        await sup.stop()
