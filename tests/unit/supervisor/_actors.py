"""Small actors the supervisor tests drive."""

from __future__ import annotations

from typing import Any

import attrs
import trio

from pycontainerd.api import errdefs
from pycontainerd.supervisor import Actor, Deferred


@attrs.frozen
class Get:
    pass


@attrs.frozen
class Add:
    n: int


@attrs.frozen
class Boom:
    pass


@attrs.frozen
class Refuse:
    payload: object = None


@attrs.frozen
class Slow:
    seconds: float


@attrs.frozen
class Block:
    """Hold the mailbox for ``seconds`` (a badly written handler)."""

    seconds: float


class Counter(Actor):
    """Counts; crashes on ``Boom``; answers ``Slow`` from a child task."""

    inits: list[str] = []

    def __init__(self, name: str = "counter", mailbox_size: int = 4) -> None:
        super().__init__(name=name, mailbox_size=mailbox_size)
        self.total = 0
        self.terminated: BaseException | None = None

    async def init(self) -> None:
        Counter.inits.append(self.name)

    async def on_get(self, msg: Get) -> int:
        return self.total

    async def on_add(self, msg: Add) -> int:
        self.total += msg.n
        return self.total

    async def on_boom(self, msg: Boom) -> None:
        raise RuntimeError("boom")

    async def on_refuse(self, msg: Refuse) -> None:
        raise errdefs.FailedPrecondition("refused")

    async def on_slow(self, msg: Slow) -> Deferred:
        async def later() -> str:
            await trio.sleep(msg.seconds)
            return "slow done"

        return self.defer(later)

    async def on_block(self, msg: Block) -> str:
        await trio.sleep(msg.seconds)
        return "unblocked"

    handlers = {
        Get: on_get,
        Add: on_add,
        Boom: on_boom,
        Refuse: on_refuse,
        Slow: on_slow,
        Block: on_block,
    }


class FailsInit(Actor):
    def __init__(self) -> None:
        super().__init__(name="fails")

    async def init(self) -> None:
        raise RuntimeError("cannot init")


class Stubborn(Actor):
    """Ignores Stop for a long time: its handler never returns."""

    def __init__(self) -> None:
        super().__init__(name="stubborn")

    async def on_block(self, msg: Block) -> None:
        await trio.sleep(msg.seconds)

    handlers = {Block: on_block}


def results(values: list[Any]) -> list[Any]:
    return values
