"""``Supervisor``: a nursery that owns restart policy for its children.

Why it looks like this
======================

A supervisor is one Trio nursery plus one wrapper task per child::

    Supervisor.run ─ nursery ─┬─ _run_child(a) ── spec.start(path, task_status) ── Actor.serve
                              ├─ _run_child(b) ── ...
                              └─ (the run task itself reads the exits channel)

    child returns/raises ──▶ wrapper records Exit(child, exc) ──▶ exits channel
                                                                   │
    run loop: restart? (restart type) ─ intensity window ok? ─ strategy ─┘

* Start is synchronous (OTP ``start_link``): ``nursery.start`` returns only when
  the *child* called ``task_status.started(value)``, so children start in order
  and each sees its predecessors ready. A child that fails before it is ready
  fails its supervisor's start.
* The wrapper catches ``Exception`` (unwrapping one-leaf exception groups), never
  ``BaseException``: ``Cancelled`` keeps propagating so an outer cancel tears
  the whole tree down.
* Stopping is reverse start order, each child first asked to stop (an actor
  gets ``Stop`` behind the messages already queued) and cancelled if it has not
  ended after ``shutdown`` seconds (OTP ``brutal_kill``).
* Intensity: more than ``intensity`` restarts within ``period`` seconds (Trio
  time, so tests use ``autojump_clock``) and the supervisor stops everything and
  raises ``SupervisorGaveUp``; its parent applies its own policy. Keep roots
  small (3 in 30 s): intensities multiply down the tree.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from typing import Any

import attrs
import trio

from ._errors import SupervisorGaveUp
from ._spec import ChildSpec, Strategy

log = logging.getLogger("pycontainerd.supervisor")


@attrs.define(eq=False)
class Child:
    """A running (or restarting) child and its history."""

    spec: ChildSpec
    path: str
    value: Any = None
    scope: trio.CancelScope | None = None
    ended: trio.Event = attrs.field(factory=trio.Event)
    started_at: float | None = None
    restarts: int = 0
    status: str = "starting"
    stopping: bool = False


@attrs.frozen
class Exit:
    child: Child
    error: Exception | None


def collapse(exc: BaseException) -> BaseException:
    """The single leaf of nested one-leaf exception groups (strict nurseries)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


class Supervisor:
    """Children started in order, restarted by policy, stopped in reverse.

    Args:
        name: the supervisor's id under its parent.
        children: specs started in order by :meth:`run`.
        strategy: ``one_for_one`` restarts the failed child, ``one_for_all``
            all children, ``rest_for_one`` the failed child and those started
            after it.
        intensity: restarts allowed within ``period`` seconds.
        period: the window of ``intensity``.
    """

    kind = "supervisor"

    def __init__(
        self,
        name: str,
        children: list[ChildSpec] | None = None,
        *,
        strategy: Strategy = "one_for_one",
        intensity: int = 3,
        period: float = 5.0,
    ) -> None:
        self.name = name
        self.path = name
        self.strategy = strategy
        self.intensity = intensity
        self.period = period
        self._specs = list(children or [])
        self._children: list[Child] = []
        self._restarts: deque[float] = deque()
        self._nursery: trio.Nursery | None = None
        self._exits_tx: trio.MemorySendChannel[Exit] | None = None
        self._stopping = False
        self._done = trio.Event()
        self.started_at = 0.0

    # -- public ----------------------------------------------------------------

    async def run(
        self,
        *,
        path: str | None = None,
        task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Start the children in order, report ready with ``self``, supervise until stopped.

        Raises:
            SupervisorGaveUp: restart intensity exceeded (children are stopped first).
        """
        self.path = path or self.name
        self._stopping = False
        self._done = trio.Event()
        self._children = []
        self._restarts.clear()
        tx, rx = trio.open_memory_channel[Exit](math.inf)
        self._exits_tx = tx
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                for spec in list(self._specs):
                    await self._start(Child(spec, self._child_path(spec)))
                self.started_at = trio.current_time()
                task_status.started(self)
                async with rx:
                    async for ex in rx:
                        await self._on_exit(ex)
        finally:
            self._nursery = None
            self._done.set()

    async def start_child(self, spec: ChildSpec) -> Any:
        """Start one more child now (it is restarted with the others if this
        supervisor restarts). Returns the value the child reported ready with.

        Raises:
            errdefs.AlreadyExists: a child with ``spec.id`` is running.
        """
        from pycontainerd.api import errdefs

        if any(c.spec.id == spec.id for c in self._children):
            raise errdefs.AlreadyExists(f"child {spec.id!r} already running in {self.path}")
        child = Child(spec, self._child_path(spec))
        value = await self._start(child)
        self._specs.append(spec)
        return value

    async def stop(self) -> None:
        """Stop every child in reverse start order, then return from :meth:`run`."""
        if self._nursery is None:
            return
        self._stopping = True
        await self._stop_children(list(reversed(self._children)))
        for c in list(self._children):
            self._remove(c)
        if self._exits_tx is not None:
            self._exits_tx.close()
        await self._done.wait()

    def children(self) -> list[Child]:
        return list(self._children)

    def child(self, id: str) -> Child | None:
        for c in self._children:
            if c.spec.id == id:
                return c
        return None

    @property
    def restarts(self) -> int:
        return sum(c.restarts for c in self._children)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.path!r} strategy={self.strategy} "
            f"children={len(self._children)}>"
        )

    # -- children --------------------------------------------------------------

    def _child_path(self, spec: ChildSpec) -> str:
        return f"{self.path}/{spec.id}"

    async def _start(self, child: Child, at: int | None = None) -> Any:
        assert self._nursery is not None, "supervisor not running"
        child.ended = trio.Event()
        child.stopping = False
        child.status = "starting"
        self._children.insert(len(self._children) if at is None else at, child)
        try:
            child.value = await self._nursery.start(self._run_child, child)
        except BaseException:
            if child in self._children:
                self._children.remove(child)
            raise
        child.started_at = trio.current_time()
        child.status = "running"
        return child.value

    async def _run_child(self, child: Child, *, task_status: trio.TaskStatus[Any]) -> None:
        error: Exception | None = None
        started = False

        class _Status:
            def started(self, value: Any = None) -> None:
                nonlocal started
                started = True
                task_status.started(value)

        try:
            with trio.CancelScope() as scope:
                child.scope = scope
                await child.spec.start(child.path, task_status=_Status())
        except Exception as exc:
            if not started:
                raise
            leaf = collapse(exc)
            error = leaf if isinstance(leaf, Exception) else exc
        finally:
            child.ended.set()
        if not started:
            return
        if not child.stopping and self._exits_tx is not None:
            self._exits_tx.send_nowait(Exit(child, error))

    async def _stop_child(self, child: Child) -> None:
        if child.ended.is_set():
            return
        child.stopping = True
        child.status = "stopping"
        with trio.move_on_after(math.inf if child.spec.shutdown is None else child.spec.shutdown):
            try:
                await child.spec.stop(child.value)
            except Exception as exc:
                log.debug("%s: graceful stop failed: %s", child.path, exc)
            await child.ended.wait()
        if not child.ended.is_set():
            log.warning("%s did not stop in %ss: cancelled", child.path, child.spec.shutdown)
            if child.scope is not None:
                child.scope.cancel()
            await child.ended.wait()
        child.status = "stopped"

    async def _stop_children(self, children: list[Child]) -> None:
        for child in children:
            await self._stop_child(child)

    def _remove(self, child: Child) -> None:
        if child in self._children:
            self._children.remove(child)
        if child.spec in self._specs and child.spec.restart != "permanent":
            self._specs.remove(child.spec)
        child.spec.cleanup()
        self.on_removed(child)

    def on_removed(self, child: Child) -> None:
        """Hook: a child ended for good (keyed supervisors forget its key)."""

    # -- restart policy ----------------------------------------------------------

    async def _on_exit(self, ex: Exit) -> None:
        child = ex.child
        if self._stopping or child not in self._children:
            return
        if ex.error is not None:
            log.error(
                "%s crashed: %s",
                child.path,
                ex.error,
                exc_info=ex.error,
                extra={"actor": child.path},
            )
        restart = child.spec.restart == "permanent" or (
            child.spec.restart == "transient" and ex.error is not None
        )
        if not restart:
            child.status = "exited"
            self._remove(child)
            return
        await self._restart(child, ex.error)

    def _note_restart(self, child: Child, error: BaseException | None) -> None:
        now = trio.current_time()
        self._restarts.append(now)
        while self._restarts and self._restarts[0] < now - self.period:
            self._restarts.popleft()
        if len(self._restarts) > self.intensity:
            raise SupervisorGaveUp(
                self.path, child.spec.id, len(self._restarts), self.period
            ) from error

    async def _restart(self, failed: Child, error: BaseException | None) -> None:
        while True:
            try:
                self._note_restart(failed, error)
            except SupervisorGaveUp:
                self._stopping = True
                await self._stop_children(list(reversed(self._children)))
                for c in list(self._children):
                    self._remove(c)
                raise
            index = self._children.index(failed)
            if self.strategy == "one_for_one":
                group = [failed]
            elif self.strategy == "one_for_all":
                group = list(self._children)
            else:
                group = self._children[index:]
            await self._stop_children([c for c in reversed(group) if c is not failed])
            positions = [self._children.index(c) for c in group]
            for c in group:
                self._children.remove(c)
            started: list[Child] = []
            try:
                for pos, c in zip(positions, group, strict=True):
                    c.restarts += 1
                    await self._start(c, at=pos)
                    started.append(c)
                return
            except Exception as exc:
                log.error("%s: restart failed: %s", failed.path, exc)
                error = exc
                await self._stop_children(list(reversed(started)))
                for c in started:
                    self._children.remove(c)
                for pos, c in zip(positions, group, strict=True):
                    c.status = "restarting"
                    self._children.insert(pos, c)
