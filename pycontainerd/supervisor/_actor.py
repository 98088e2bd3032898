"""``Actor``: gen_server-shaped state with one handler per message type.

Subclasses declare ``handlers = {Msg: on_msg, ...}`` and keep their state on
the instance; messages are handled one at a time, so the state needs no locks.
A handler answers by returning a value, or raising an
:class:`~pycontainerd.api.errdefs.ErrdefsError` that reaches the caller as is.
Any other exception crashes the actor: the caller gets ``ActorCrashed`` and
the supervisor decides whether to restart it.

Long work never blocks the mailbox. A handler returns :meth:`Actor.defer`
of a coroutine function, which runs in the actor's own nursery and answers the
caller when it finishes, or hands blocking work to :meth:`Actor.run_sync_in_thread`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar, TypeVar

import trio

from pycontainerd.api import errdefs

from ._errors import ActorCrashed
from ._mailbox import Envelope, Reply
from ._ref import ActorCell, Stop

log = logging.getLogger("pycontainerd.supervisor")

T = TypeVar("T")
HandlerFn = Callable[[Any, Any], Awaitable[Any]]

_IO_LIMITER: trio.lowlevel.RunVar[trio.CapacityLimiter] = trio.lowlevel.RunVar("io_limiter")
IO_THREADS = 16


def io_limiter() -> trio.CapacityLimiter:
    """The daemon-wide limiter for worker threads doing file and CPU work."""
    try:
        return _IO_LIMITER.get()
    except LookupError:
        limiter = trio.CapacityLimiter(IO_THREADS)
        _IO_LIMITER.set(limiter)
        return limiter


class Deferred:
    """A handler's answer that a child task will compute (see :meth:`Actor.defer`)."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[], Awaitable[Any]]) -> None:
        self.fn = fn


class Actor:
    """Base class of every actor.

    Args:
        name: the last component of the actor's path in the tree.
        mailbox_size: capacity of the bounded mailbox.
    """

    handlers: ClassVar[Mapping[type, HandlerFn]] = {}
    kind: ClassVar[str] = ""

    def __init__(self, *, name: str, mailbox_size: int = 64) -> None:
        self.name = name
        self.mailbox_size = mailbox_size
        self._nursery: trio.Nursery | None = None
        self._cell: ActorCell | None = None
        self._pending: set[Reply] = set()
        self.last_active = 0.0

    # -- hooks ---------------------------------------------------------------

    async def init(self) -> None:
        """Runs before the first message; the actor is not ready until it returns."""

    async def terminate(self, reason: BaseException | None) -> None:
        """Runs when the actor stops or crashes (shielded, at most 5 s)."""

    def busy(self) -> bool:
        """Whether the actor holds state an idle passivation would lose (an open
        ingest writer, a lock held for a client); a busy actor is kept."""
        return False

    async def on_unknown(self, msg: object) -> Any:
        raise errdefs.NotImplemented_(
            f"{type(self).__name__} has no handler for {type(msg).__name__}"
        )

    # -- tools for handlers --------------------------------------------------

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run ``fn(*args)`` in the actor's nursery; an exception in it crashes the actor."""
        assert self._nursery is not None, "actor not running"
        self._nursery.start_soon(fn, *args)

    def defer(self, fn: Callable[[], Awaitable[Any]]) -> Deferred:
        """Return this from a handler to answer with ``await fn()`` from a child task.

        The next message is handled at once; ``fn``'s domain error reaches the
        caller, any other exception crashes the actor.
        """
        return Deferred(fn)

    async def run_sync_in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking ``fn(*args)`` in a worker thread under the shared IO limiter."""
        return await trio.to_thread.run_sync(fn, *args, limiter=io_limiter())

    @property
    def path(self) -> str:
        return self._cell.path if self._cell is not None else self.name

    def statistics_repr(self) -> str:
        if self._cell is None:
            return "mailbox=-"
        stats = self._cell.mailbox.statistics()
        return f"mailbox={stats.depth}/{stats.capacity}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path!r} {self.statistics_repr()}>"

    # -- the loop --------------------------------------------------------------

    async def serve(
        self,
        cell: ActorCell,
        *,
        idle_timeout: float | None = None,
        on_idle: Callable[[], bool] | None = None,
        task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run ``init``, report ready with ``cell.ref``, then handle messages.

        Returns after a :class:`Stop` message, or when idle for ``idle_timeout``
        seconds and ``on_idle()`` agrees (passivation); raises when the actor
        crashes.
        """
        self._cell = cell
        cell.actor = self
        reason: BaseException | None = None
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await self.init()
                self.last_active = trio.current_time()
                task_status.started(cell.ref)
                await self._loop(cell, idle_timeout, on_idle)
                nursery.cancel_scope.cancel()
        except BaseException as exc:
            reason = exc
            raise
        finally:
            self._nursery = None
            for reply in self._pending:
                reply.fail(ActorCrashed(f"actor {self.path} stopped before answering"))
            self._pending.clear()
            if cell.actor is self:
                cell.actor = None
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                await self.terminate(reason)

    async def _loop(
        self, cell: ActorCell, idle_timeout: float | None, on_idle: Callable[[], bool] | None
    ) -> None:
        mailbox = cell.mailbox
        while True:
            env: Envelope | None = None
            if idle_timeout is None:
                env = await mailbox.get()
            else:
                with trio.move_on_after(idle_timeout):
                    env = await mailbox.get()
                if env is None:
                    if not self._pending and not self.busy() and on_idle is not None and on_idle():
                        return
                    continue
            if isinstance(env.msg, Stop):
                if env.reply is not None:
                    env.reply.set(None)
                return
            await self._dispatch(env.msg, env.reply)
            self.last_active = trio.current_time()

    async def _dispatch(self, msg: object, reply: Reply | None) -> None:
        handler = self.handlers.get(type(msg))
        try:
            if handler is None:
                result = await self.on_unknown(msg)
            else:
                result = await handler(self, msg)
        except errdefs.ErrdefsError as exc:
            if reply is not None:
                reply.fail(exc)
            else:
                log.warning("%s: %s on %s (no one waiting)", self.path, exc, type(msg).__name__)
            return
        except Exception as exc:
            if reply is not None:
                crashed = ActorCrashed(f"actor {self.path} crashed handling {type(msg).__name__}")
                crashed.__cause__ = exc
                reply.fail(crashed)
            raise
        if isinstance(result, Deferred):
            if reply is not None:
                self._pending.add(reply)
            self.start_soon(self._answer_later, result.fn, reply)
        elif reply is not None:
            reply.set(result)

    async def _answer_later(self, fn: Callable[[], Awaitable[Any]], reply: Reply | None) -> None:
        try:
            result = await fn()
        except errdefs.ErrdefsError as exc:
            if reply is not None:
                reply.fail(exc)
        except Exception as exc:
            if reply is not None:
                crashed = ActorCrashed(f"actor {self.path} crashed answering a deferred call")
                crashed.__cause__ = exc
                reply.fail(crashed)
            raise
        else:
            if reply is not None:
                reply.set(result)
        finally:
            if reply is not None:
                if not reply.done:
                    reply.fail(ActorCrashed(f"actor {self.path} stopped before answering"))
                self._pending.discard(reply)
