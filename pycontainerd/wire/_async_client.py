"""The Trio msgpack-RPC client: many calls in flight on one connection.

    async with await AsyncClient.connect(address) as c:
        await c.call("version.version")
        async with c.stream("events.subscribe", {"since": 0}) as events:
            async for envelope in events:
                ...

asyncio programs reach it through ``trio_asyncio`` (the daemon hosts asyncio
code the same way).
"""

from __future__ import annotations

import contextlib
import itertools
import socket
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

import trio

from pycontainerd.api import errdefs

from ._client import STREAM_BUFFER, ConnectionLost
from ._codec import (
    MAX_MSGID,
    Decoder,
    Encoder,
    Notification,
    ProtocolError,
    Response,
    make_meta,
    stream_item,
)

_UNSET: Any = object()


class _Pending:
    def __init__(self, stream: bool) -> None:
        self.done = trio.Event()
        self.error: errdefs.ErrdefsError | None = None
        self.result: Any = None
        self.items: tuple[trio.MemorySendChannel[Any], trio.MemoryReceiveChannel[Any]] | None = (
            trio.open_memory_channel[Any](STREAM_BUFFER) if stream else None
        )

    def finish(self, error: errdefs.ErrdefsError | None, result: Any) -> None:
        self.error, self.result = error, result
        self.done.set()
        if self.items is not None:
            self.items[0].close()


class AsyncStream:
    """The items of one server stream (``async for``), then :attr:`result`."""

    def __init__(self, client: AsyncClient, msgid: int, pending: _Pending) -> None:
        self._client = client
        self.msgid = msgid
        self._pending = pending

    async def __aiter__(self) -> AsyncIterator[Any]:
        assert self._pending.items is not None
        async for item in self._pending.items[1]:
            yield item
        await self._pending.done.wait()
        if self._pending.error is not None:
            raise self._pending.error

    @property
    def result(self) -> Any:
        return self._pending.result

    async def cancel(self) -> None:
        if not self._pending.done.is_set():
            await self._client.notify("call.cancel", [self.msgid])

    async def __aenter__(self) -> AsyncStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        with trio.CancelScope(shield=True), contextlib.suppress(ConnectionLost):
            await self.cancel()


class AsyncClient:
    """One connection; create with :meth:`connect`, close with ``aclose``."""

    def __init__(
        self, stream: trio.SocketStream, nursery_token: trio.CancelScope, *, namespace: str | None
    ) -> None:
        self._stream = stream
        self._scope = nursery_token
        self.namespace = namespace
        self._decoder = Decoder()
        self._encoder = Encoder()
        self._send_lock = trio.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._lost: ConnectionLost | None = None

    @classmethod
    async def connect(cls, address: str, *, namespace: str | None = "default") -> AsyncClient:
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            await sock.connect(address)
        except OSError as exc:
            sock.close()
            raise ConnectionLost(f"cannot connect to {address}: {exc.strerror or exc}") from None
        client = cls(trio.SocketStream(sock), trio.CancelScope(), namespace=namespace)
        trio.lowlevel.spawn_system_task(client._read)
        return client

    async def call(
        self,
        method: str,
        request: dict[str, Any] | None = None,
        *,
        namespace: str | None = _UNSET,
        server_timeout: float | None = None,
        lease: str | None = None,
    ) -> Any:
        """Call ``method`` and return its result map (raises the daemon's error).

        ``server_timeout`` is sent as ``meta.timeout``; to bound the wait here, use
        a Trio cancel scope (cancelling sends ``call.cancel``).
        """
        msgid, pending = await self._start(method, request, namespace, server_timeout, lease, False)
        try:
            await pending.done.wait()
        except trio.Cancelled:
            with trio.CancelScope(shield=True), contextlib.suppress(ConnectionLost):
                await self.notify("call.cancel", [msgid])
            raise
        if pending.error is not None:
            raise pending.error
        return pending.result

    async def stream(
        self,
        method: str,
        request: dict[str, Any] | None = None,
        *,
        namespace: str | None = _UNSET,
        lease: str | None = None,
    ) -> AsyncStream:
        msgid, pending = await self._start(method, request, namespace, None, lease, True)
        return AsyncStream(self, msgid, pending)

    async def notify(self, method: str, params: Any) -> None:
        async with self._send_lock:
            await self._send(self._encoder.notification(method, params))

    async def aclose(self) -> None:
        self._scope.cancel()
        await trio.aclose_forcefully(self._stream)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _start(
        self,
        method: str,
        request: dict[str, Any] | None,
        namespace: str | None,
        server_timeout: float | None,
        lease: str | None,
        stream: bool,
    ) -> tuple[int, _Pending]:
        if self._lost is not None:
            raise self._lost
        meta = make_meta(
            self.namespace if namespace is _UNSET else namespace, lease, server_timeout
        )
        pending = _Pending(stream)
        async with self._send_lock:
            msgid = next(self._ids) % (MAX_MSGID + 1)
            self._pending[msgid] = pending
            await self._send(self._encoder.request(msgid, method, request or {}, meta))
        return msgid, pending

    async def _send(self, frame: bytes) -> None:
        try:
            await self._stream.send_all(frame)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ConnectionLost(f"connection lost: {exc}") from None

    async def _read(self) -> None:
        reason = "connection closed by the daemon"
        with self._scope:
            try:
                while True:
                    data = await self._stream.receive_some(1 << 16)
                    if not data:
                        break
                    self._decoder.feed(data)
                    for msg in self._decoder:
                        await self._deliver(msg)
            except ProtocolError as exc:
                reason = f"protocol error from the daemon: {exc}"
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                reason = f"connection lost: {exc}"
        self._lost = ConnectionLost(reason)
        for pending in list(self._pending.values()):
            pending.finish(ConnectionLost(reason), None)
        self._pending.clear()

    async def _deliver(self, msg: Any) -> None:
        if isinstance(msg, Response):
            pending = self._pending.pop(msg.msgid, None)
            if pending is not None:
                pending.finish(
                    None if msg.error is None else errdefs.from_wire(msg.error), msg.result
                )
        elif isinstance(msg, Notification) and msg.method == "stream.item":
            got = stream_item(msg.params)
            pending = None if got is None else self._pending.get(got[0])
            if got is not None and pending is not None and pending.items is not None:
                with contextlib.suppress(trio.ClosedResourceError):
                    await pending.items[0].send(got[1])
