"""The contract between the RPC server (``wire/``) and the services behind it.

A method is described once, in :data:`pycontainerd.api.methods.METHODS`, by a
:class:`Method`. The server decodes a request, checks its meta (namespace,
lease, timeout), structures ``params[0]`` into ``Method.request`` and hands a
:class:`Call` to the method's :data:`Handler`.

Handlers run in two phases, so that requests on one connection reach their
actor in the order they were sent::

    reader task                          per-request task
    -----------                          ----------------
    decode frame
    wait = await handler(call)   ──────▶ result = await wait()
    (enqueued in the actor's              unstructure, send response
     mailbox before the next
     frame is read)

The first phase should only enqueue (or answer at once with :func:`done`); the
second waits for the reply. Errors are :class:`~pycontainerd.api.errdefs.ErrdefsError`
subclasses, raised from either phase.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import attrs


@attrs.frozen(kw_only=True)
class Method:
    """One RPC method: ``service.method`` with its request and response types."""

    name: str
    request: type[Any]
    response: type[Any]
    namespaced: bool = True
    """Whether the call needs ``meta.namespace`` (``FailedPrecondition`` without)."""
    stream: type[Any] | None = None
    """For server streams, the type of each ``stream.item``; ``None`` otherwise."""
    doc: str = ""


@attrs.frozen(kw_only=True)
class Meta:
    """``params[1]``: per-call metadata (containerd's gRPC headers)."""

    namespace: str | None = None
    lease: str | None = None
    timeout: float | None = None


class ItemSink(Protocol):
    """Where a server stream sends its items (``stream.item`` notifications)."""

    async def send(self, item: Any) -> None:
        """Send one item (an attrs instance of ``Method.stream``).

        Blocks while the connection's outgoing queue is full. Raises
        :class:`~pycontainerd.api.errdefs.Canceled` once the call was
        cancelled or the connection closed.
        """
        ...


class Peer(Protocol):
    """The connection a call came from."""

    @property
    def id(self) -> int:
        """Unique per connection for the daemon's lifetime."""
        ...

    def on_close(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` (synchronously, once) when the connection closes."""
        ...


@attrs.define(kw_only=True)
class Call:
    """One decoded request, as a handler sees it."""

    method: Method
    request: Any
    meta: Meta
    peer: Peer
    stream: ItemSink | None = None

    @property
    def namespace(self) -> str:
        """The call's namespace; the server guarantees one for namespaced methods."""
        return self.meta.namespace or ""


Wait = Callable[[], Awaitable[Any]]
"""Phase two of a handler: waits for and returns the response object."""

Handler = Callable[[Call], Awaitable[Wait]]
"""Phase one of a handler: validates and enqueues, returns phase two."""


class Done:
    """A :data:`Wait` whose result is already known; the server answers it inline."""

    __slots__ = ("result",)

    def __init__(self, result: Any) -> None:
        self.result = result

    async def __call__(self) -> Any:
        return self.result


def done(result: Any) -> Wait:
    """A :data:`Wait` for a result that is already known (see :class:`Done`)."""
    return Done(result)
