"""``ChildSpec``: what a supervisor needs to start, stop and restart a child."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol

import attrs
import trio

from ._mailbox import Mailbox
from ._ref import ActorCell, ActorRef

if TYPE_CHECKING:
    from ._actor import Actor

Restart = Literal["permanent", "transient", "temporary"]
Strategy = Literal["one_for_one", "one_for_all", "rest_for_one"]


class StartFn(Protocol):
    """Start the child at ``path``; it reports ready with ``task_status.started(value)``."""

    def __call__(self, path: str, *, task_status: trio.TaskStatus[Any]) -> Awaitable[None]: ...


class Stoppable(Protocol):
    async def stop(self) -> None: ...


async def _stop_value(value: Any) -> None:
    stop = getattr(value, "stop", None)
    if stop is not None:
        await stop()


@attrs.frozen(kw_only=True)
class ChildSpec:
    """One child of a supervisor (OTP's child specification).

    Args:
        id: unique among its siblings; the last component of its path.
        start: runs the child (see :class:`StartFn`).
        restart: ``permanent`` always restarts, ``transient`` only after a crash,
            ``temporary`` never.
        shutdown: seconds a graceful stop may take before the child is cancelled;
            ``None`` waits indefinitely (for sub-supervisors).
        stop: asks the started value to stop gracefully (default: its ``stop()``).
        cleanup: runs once the child is gone for good.
    """

    id: str
    start: StartFn
    restart: Restart = "permanent"
    shutdown: float | None = 5.0
    stop: Callable[[Any], Awaitable[None]] = _stop_value
    cleanup: Callable[[], None] = lambda: None
    """Runs once the child is gone for good (an actor's mailbox is closed)."""

    @classmethod
    def for_actor(
        cls,
        factory: Callable[[], Actor],
        *,
        id: str,
        restart: Restart = "permanent",
        shutdown: float | None = 5.0,
        idle_timeout: float | None = None,
        on_idle: Callable[[], bool] | None = None,
    ) -> ChildSpec:
        """A child that runs ``factory()``'s actor; its :class:`ActorRef` survives restarts."""
        cells: list[ActorCell] = []

        async def start(path: str, *, task_status: trio.TaskStatus[Any]) -> None:
            actor = factory()
            if not cells:
                cells.append(ActorCell(path, actor.mailbox_size))
            elif cells[0].mailbox.closed:
                cells[0].mailbox = Mailbox(actor.mailbox_size)
            await actor.serve(
                cells[0], idle_timeout=idle_timeout, on_idle=on_idle, task_status=task_status
            )

        async def stop(ref: ActorRef) -> None:
            await ref.stop()

        def cleanup() -> None:
            if cells:
                cells[0].mailbox.close(f"actor {cells[0].path} stopped")

        return cls(
            id=id, start=start, restart=restart, shutdown=shutdown, stop=stop, cleanup=cleanup
        )

    @classmethod
    def for_supervisor(
        cls, sup: Any, *, restart: Restart = "permanent", shutdown: float | None = None
    ) -> ChildSpec:
        """A child that is itself a supervisor (its value is the supervisor)."""

        async def start(path: str, *, task_status: trio.TaskStatus[Any]) -> None:
            await sup.run(path=path, task_status=task_status)

        return cls(id=sup.name, start=start, restart=restart, shutdown=shutdown)
