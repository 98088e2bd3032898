"""The msgpack-RPC server on Trio: one task per connection, one per request.

    reader task (per connection)                 request tasks
    ----------------------------                 -------------
    bytes ─▶ Decoder ─▶ Request ─▶ route, meta,
                                   structure,
                                   wait = await handler(call)   (phase one: enqueued
                                   start_soon(finish, wait) ──▶  in the actor's mailbox
                                                                 in arrival order)
                                                                result = await wait()
    writer task ◀── bounded outgoing queue ◀─────────────────── response / stream.item

The reader never waits for a reply, so responses come back in any order while
each actor still sees one connection's requests in the order they were sent.
In-flight requests per connection are bounded: past the bound the reader stops
reading, and the client feels backpressure instead of the daemon growing.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import trio

from pycontainerd.api import errdefs, identifiers
from pycontainerd.api.convert import structure_request, unstructure
from pycontainerd.api.rpc import Call, Done, Handler, Method, Wait

from ._codec import (
    DEFAULT_MAX_MESSAGE_SIZE,
    Decoder,
    Encoder,
    Notification,
    ProtocolError,
    Request,
    Response,
    parse_meta,
)

log = logging.getLogger("pycontainerd.wire")

Router = Mapping[str, tuple[Method, Handler]]

MAX_IN_FLIGHT = 1024
"""Requests in progress per connection before the reader stops reading."""
READ_SIZE = 1 << 16

_ids = itertools.count(1)


class _Stream:
    """A call's ``stream.item`` sink."""

    __slots__ = ("_conn", "_msgid")

    def __init__(self, conn: Connection, msgid: int) -> None:
        self._conn = conn
        self._msgid = msgid

    async def send(self, item: Any) -> None:
        frame = self._conn.encoder.notification("stream.item", [self._msgid, unstructure(item)])
        await self._conn.send(frame)


class Connection:
    """One client connection (the :class:`~pycontainerd.api.rpc.Peer` of its calls)."""

    def __init__(self, stream: trio.SocketStream, router: Router, max_message_size: int) -> None:
        self.id = next(_ids)
        self._stream = stream
        self._router = router
        self._decoder = Decoder(max_message_size)
        self.encoder = Encoder()
        self._send_lock = trio.StrictFIFOLock()
        self._calls: dict[int, trio.CancelScope] = {}
        self._cancelled: set[int] = set()
        self._in_flight = trio.Semaphore(MAX_IN_FLIGHT)
        self._on_close: list[Callable[[], None]] = []
        self._closed = False

    def on_close(self, callback: Callable[[], None]) -> None:
        if self._closed:
            callback()
        else:
            self._on_close.append(callback)

    async def send(self, frame: bytes) -> None:
        """Queue one frame (waits while the outgoing queue is full).

        Raises:
            errdefs.Canceled: the connection is closed.
        """
        if self._closed:
            raise errdefs.Canceled("connection closed")
        try:
            try:
                self._send_lock.acquire_nowait()  # no scheduling round trip when free
            except trio.WouldBlock:
                await self._send_lock.acquire()
            try:
                await self._stream.send_all(frame)
            finally:
                self._send_lock.release()
        except (trio.ClosedResourceError, trio.BrokenResourceError, trio.BusyResourceError):
            self._closed = True
            raise errdefs.Canceled("connection closed") from None

    async def serve(self) -> None:
        try:
            async with trio.open_nursery() as nursery:
                try:
                    await self._reader(nursery)
                finally:
                    nursery.cancel_scope.cancel()
        finally:
            self._closed = True
            for callback in self._on_close:
                try:
                    callback()
                except Exception:
                    log.exception("on_close callback failed")
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(self._stream)

    async def _reader(self, nursery: trio.Nursery) -> None:
        while True:
            try:
                data = await self._stream.receive_some(READ_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return
            if not data:
                return
            try:
                self._decoder.feed(data)
                while True:
                    try:
                        msg = next(self._decoder)
                    except StopIteration:
                        break
                    except ProtocolError as exc:
                        if exc.msgid is None:
                            raise
                        await self._send_error(exc.msgid, exc.error)
                        continue
                    await self._dispatch(msg, nursery)
            except ProtocolError as exc:
                # The stream cannot be trusted any more: answer what can be answered, close.
                if exc.msgid is not None:
                    await self._send_error(exc.msgid, exc.error)
                log.debug("conn %d: closing: %s", self.id, exc)
                return

    async def _dispatch(
        self, msg: Request | Response | Notification, nursery: trio.Nursery
    ) -> None:
        while True:
            try:
                if isinstance(msg, Request):
                    await self._request(msg, nursery)
                elif isinstance(msg, Notification):
                    self._notification(msg)
                else:
                    raise ProtocolError(errdefs.InvalidArgument("clients do not send responses"))
                return
            except ProtocolError as exc:
                if exc.msgid is None:
                    raise
                await self._send_error(exc.msgid, exc.error)
                return

    async def _send_error(self, msgid: int, exc: errdefs.ErrdefsError) -> None:
        with contextlib.suppress(errdefs.Canceled):
            await self.send(self.encoder.error(msgid, exc))

    def _notification(self, msg: Notification) -> None:
        if msg.method == "call.cancel":
            params = msg.params
            if isinstance(params, list | tuple) and params and isinstance(params[0], int):
                scope = self._calls.get(params[0])
                if scope is not None:
                    self._cancelled.add(params[0])
                    scope.cancel()
            return
        log.debug("conn %d: ignoring notification %r", self.id, msg.method)

    async def _request(self, req: Request, nursery: trio.Nursery) -> None:
        route = self._router.get(req.method)
        if route is None:
            raise ProtocolError(
                errdefs.NotImplemented_(f"unknown method {req.method!r}"), req.msgid
            )
        method, handler = route
        if req.msgid in self._calls:
            raise ProtocolError(
                errdefs.InvalidArgument(f"msgid {req.msgid} is already in flight"), req.msgid
            )
        try:
            meta = parse_meta(req.meta)
            if meta.namespace is not None:
                identifiers.validate(meta.namespace)
            elif method.namespaced:
                raise errdefs.FailedPrecondition("namespace is required")
            request = structure_request(req.request, method.request)
        except errdefs.ErrdefsError as exc:
            raise ProtocolError(exc, req.msgid) from None
        call = Call(
            method=method,
            request=request,
            meta=meta,
            peer=self,
            stream=_Stream(self, req.msgid) if method.stream is not None else None,
        )
        scope = trio.CancelScope()
        if meta.timeout is not None:
            scope.deadline = trio.current_time() + meta.timeout
        try:
            self._in_flight.acquire_nowait()
        except trio.WouldBlock:
            await self._in_flight.acquire()
        self._calls[req.msgid] = scope
        try:
            with trio.CancelScope(deadline=scope.deadline) as first:
                wait = await handler(call)
        except errdefs.ErrdefsError as exc:
            self._finished(req.msgid)
            raise ProtocolError(exc, req.msgid) from None
        except Exception:
            self._finished(req.msgid)
            log.exception("conn %d: %s failed", self.id, req.method)
            raise ProtocolError(errdefs.Internal("internal error"), req.msgid) from None
        if first.cancelled_caught:
            self._finished(req.msgid)
            raise ProtocolError(self._cancel_error(req.msgid, meta.timeout), req.msgid)
        if isinstance(wait, Done):
            # answered in phase one (version, introspection): no task, no hop
            self._finished(req.msgid)
            await self.send(self.encoder.response(req.msgid, None, unstructure(wait.result)))
            return
        nursery.start_soon(self._finish, req.msgid, req.method, wait, scope, meta.timeout)

    def _finished(self, msgid: int) -> None:
        self._calls.pop(msgid, None)
        self._cancelled.discard(msgid)
        self._in_flight.release()

    def _cancel_error(self, msgid: int, timeout: float | None) -> errdefs.ErrdefsError:
        if msgid in self._cancelled:
            return errdefs.Canceled("call cancelled by the client")
        return errdefs.DeadlineExceeded(f"timeout of {timeout:g}s exceeded")

    async def _finish(
        self, msgid: int, name: str, wait: Wait, scope: trio.CancelScope, limit: float | None
    ) -> None:
        error: errdefs.ErrdefsError | None = None
        result: Any = None
        try:
            with scope:
                result = unstructure(await wait())
            if scope.cancelled_caught:
                error = self._cancel_error(msgid, limit)
        except errdefs.ErrdefsError as exc:
            error = exc
        except Exception:
            log.exception("conn %d: %s failed", self.id, name)
            error = errdefs.Internal("internal error")
        finally:
            self._finished(msgid)
        frame = (
            self.encoder.response(msgid, None, result)
            if error is None
            else self.encoder.error(msgid, error)
        )
        with contextlib.suppress(errdefs.Canceled):
            await self.send(frame)


async def serve_rpc(
    listeners: Sequence[trio.SocketListener],
    router: Router,
    *,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``router`` on ``listeners`` until cancelled.

    Accept errors like ``EMFILE`` are retried by ``trio.serve_listeners``
    after a short sleep; they never end the listener.
    """

    async def handle(stream: trio.SocketStream) -> None:
        await Connection(stream, router, max_message_size).serve()

    await trio.serve_listeners(handle, list(listeners), task_status=task_status)


async def open_unix_listener(
    path: str, *, mode: int = 0o660, gid: int = 0, backlog: int = 4096
) -> trio.SocketListener:
    """Bind a Unix socket at ``path`` (replacing a stale file) with ``mode`` and group ``gid``."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        old = os.umask(0o177)
        try:
            await sock.bind(path)
        finally:
            os.umask(old)
        os.chown(path, -1, gid)
        os.chmod(path, mode)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return trio.SocketListener(sock)
