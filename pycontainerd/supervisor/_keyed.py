"""``KeyedSupervisor``: OTP's ``simple_one_for_one`` with activation and passivation.

Children are actors of one kind, one per key (``(namespace, id)`` of a
container, a snapshot, an ingest ``ref``). A child is started on the first
message to its key, restarted after a crash (``transient``), and, when
``idle_timeout`` is set, stopped after that long without a message; the next
message starts it again from its persistent state. Messages to one key are
serialized by its actor; different keys run in parallel.

Intensity is per key, and it never escalates. A key's actor crashes because of
what one object holds or what one client asked of it, not because the service
is broken: escalating would let a client that repeats a bad request restart
the service's siblings and, at the root's intensity, end the daemon. A key
that crashes more than ``intensity`` times in ``period`` seconds is stopped
instead of restarted (logged); its next message starts it afresh from its
persistent state, at the pace of the requests that make it crash.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

import trio

from ._actor import Actor
from ._errors import MailboxClosed
from ._ref import ActorRef, PendingReply
from ._spec import ChildSpec
from ._supervisor import Child, Supervisor

K = TypeVar("K", bound=Hashable)

log = logging.getLogger("pycontainerd.supervisor")


class _KeyGaveUp(Exception):
    """One key's actor exceeded its restart intensity (never leaves the keyed supervisor)."""


def key_id(key: Hashable) -> str:
    """A key's path component: tuples are joined with ``/``."""
    if isinstance(key, tuple):
        return "/".join(str(part) for part in key)
    return str(key)


class KeyedSupervisor(Supervisor, Generic[K]):
    """Dynamic actors by key.

    Args:
        name: the supervisor's id under its parent.
        factory: builds the actor of a key (called again on every restart).
        idle_timeout: passivate a child idle this long; ``None`` keeps it.
        intensity: restarts of one key allowed in ``period``; past it the key's
            actor is stopped until its next message (never escalated).
    """

    def __init__(
        self,
        name: str,
        factory: Callable[[K], Actor],
        *,
        idle_timeout: float | None = None,
        intensity: int = 10,
        period: float = 10.0,
        shutdown: float | None = 5.0,
    ) -> None:
        super().__init__(name, [], strategy="one_for_one", intensity=intensity, period=period)
        self._factory = factory
        self.idle_timeout = idle_timeout
        self._shutdown = shutdown
        self._refs: dict[K, ActorRef] = {}
        self._keys: dict[str, K] = {}
        self._starting: dict[K, trio.Event] = {}
        self._key_restarts: dict[str, deque[float]] = {}

    def get(self, key: K) -> ActorRef | None:
        """The key's actor if it is active; never starts one."""
        return self._refs.get(key)

    def keys(self) -> list[K]:
        return list(self._refs)

    async def ref(self, key: K) -> ActorRef:
        """The key's actor, started (``init`` done) if it was not active."""
        while True:
            ref = self._refs.get(key)
            if ref is not None:
                return ref
            starting = self._starting.get(key)
            if starting is not None:
                await starting.wait()
                continue
            starting = self._starting[key] = trio.Event()
            try:
                cid = key_id(key)
                spec = ChildSpec.for_actor(
                    lambda: self._factory(key),
                    id=cid,
                    restart="transient",
                    shutdown=self._shutdown,
                    idle_timeout=self.idle_timeout,
                    on_idle=lambda: self._passivate(key),
                )
                ref = await self.start_child(spec)
                assert isinstance(ref, ActorRef)
                self._refs[key] = ref
                self._keys[cid] = key
                return ref
            finally:
                del self._starting[key]
                starting.set()

    async def request(self, key: K, msg: object) -> PendingReply:
        """Enqueue ``msg`` for the key's actor, activating it if needed."""
        while True:
            ref = await self.ref(key)
            try:
                return await ref.request(msg)
            except MailboxClosed:
                if self._refs.get(key) is ref:
                    raise
                # passivated between lookup and enqueue: activate again

    async def call(self, key: K, msg: object) -> Any:
        pending = await self.request(key, msg)
        return await pending.wait()

    async def stop_key(self, key: K) -> None:
        """Stop the key's actor now (it starts again on its next message)."""
        child = self.child(key_id(key))
        if child is not None:
            await self._stop_child(child)
            self._remove(child)

    def _passivate(self, key: K) -> bool:
        ref = self._refs.get(key)
        child = self.child(key_id(key))
        if ref is None or child is None or ref.statistics().depth:
            return False
        child.stopping = True
        child.status = "passivated"
        self._remove(child)
        return True

    def on_removed(self, child: Child) -> None:
        self._key_restarts.pop(child.spec.id, None)
        key = self._keys.pop(child.spec.id, None)
        if key is not None:
            self._refs.pop(key, None)

    def _note_restart(self, child: Child, error: BaseException | None) -> None:
        now = trio.current_time()
        history = self._key_restarts.setdefault(child.spec.id, deque())
        history.append(now)
        while history and history[0] < now - self.period:
            history.popleft()
        if len(history) > self.intensity:
            raise _KeyGaveUp(child.spec.id) from error

    async def _restart(self, failed: Child, error: BaseException | None) -> None:
        try:
            await super()._restart(failed, error)
        except _KeyGaveUp:
            log.error(
                "%s crashed %d times in %gs: stopped until its next message",
                failed.path,
                self.intensity + 1,
                self.period,
                extra={"actor": failed.path},
            )
            failed.status = "crashed"
            self._remove(failed)

    async def _stop_children(self, children: list[Child]) -> None:
        async with trio.open_nursery() as nursery:
            for child in children:
                nursery.start_soon(self._stop_child, child)
