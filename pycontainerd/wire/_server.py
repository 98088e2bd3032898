"""The msgpack-RPC server on Trio: one task per connection, one per request.

    RpcServer.accept (supervised child)    RpcServer.serve_connections (daemon task)
    ───────────────────────────────────    ─────────────────────────────────────────
    listener.accept() ── start_soon ─────▶ connection nursery
                                            │
    Connection._reader (per connection)     │             _finish (per request)
    ───────────────────────────────────     ▼             ─────────────────────
    bytes ─▶ Decoder ─▶ whole messages ─▶ route, meta, structure,
                    └─▶ partial frame:    wait = await handler(call)  (phase one:
                        budget, deadline  start_soon(_finish) ──────▶  enqueued in the
                                                                       actor's mailbox)
                                                                      result = await wait()
    send(frame) ◀── Done answered inline ◀─┘                          send(frame)
        └─ under one send lock, straight to the socket ◀──────────────────┘

The reader never waits for a reply, so responses come back in any order while
each actor still sees one connection's requests in the order they were sent.
In-flight requests per connection are bounded: past the bound the reader stops
reading, and the client feels backpressure instead of the daemon growing.

A peer can only ever end its own connection. Every exception raised while
serving a request becomes its error reply (``Internal`` for bugs, logged); one
that escapes a connection anyway (a bug in this module) closes that connection
and is logged; nothing reaches the connection nursery. The accept loop is a
child of the root supervisor: a crash restarts it, and the connections it
accepted live on in the connection nursery, so restarting it (or the plugins
started before it, under ``rest_for_one``) drops no client.

Memory a peer can make the daemon hold while it receives is bounded by
:class:`Limits`: one frame is at most ``max_message_size``; the started,
unfinished frames of all connections together at most ``partial_frame_budget``
(the connection whose frame would go over is answered ``ResourceExhausted``
and closed: waiting instead would let every waiting connection hold another
read, and stall the small requests queued behind its frame); and a started
frame must be whole within ``frame_timeout`` seconds (slowloris), else its
connection is answered ``DeadlineExceeded`` and closed. A connection that has
started no frame is not timed: event subscribers idle for hours.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import trio

from pycontainerd.api import errdefs, identifiers
from pycontainerd.api.convert import structure_request, unstructure
from pycontainerd.api.rpc import Call, Done, Handler, Method, Wait

from ._codec import (
    DEFAULT_MAX_MESSAGE_SIZE,
    MAX_VALUES,
    Decoder,
    Encoder,
    Message,
    Notification,
    ProtocolError,
    Request,
    parse_meta,
)

log = logging.getLogger("pycontainerd.wire")

Router = Mapping[str, tuple[Method, Handler]]

MAX_IN_FLIGHT = 1024
"""Requests in progress per connection before the reader stops reading."""
READ_SIZE = 1 << 16
REFUSAL_SEND_TIMEOUT = 1.0
"""Seconds a connection being closed may take to accept the frame saying why."""
ACCEPT_RETRY = 0.1
"""Seconds before accepting again after the kernel refused one (``EMFILE``...)."""
ACCEPT_RETRY_MAX = 2.0
"""The longest wait between accepts, the retries doubling from :data:`ACCEPT_RETRY`."""
DEFAULT_PARTIAL_FRAME_BUDGET = 64 << 20
DEFAULT_FRAME_TIMEOUT = 30.0

_ids = itertools.count(1)


@attrs.frozen(kw_only=True)
class Limits:
    """What one peer may make the server hold while it receives (``[rpc]`` config)."""

    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    """Bytes of one frame (containerd's ``max_recv_message_size``)."""
    partial_frame_budget: int = DEFAULT_PARTIAL_FRAME_BUDGET
    """Bytes of started, unfinished frames all connections may hold together."""
    frame_timeout: float = DEFAULT_FRAME_TIMEOUT
    """Seconds from the first byte of a frame to its last."""


class FrameBudget:
    """The bytes of partly received frames all connections of a server hold."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def resize(self, held: int, new: int) -> bool:
        """Change one connection's share from ``held`` to ``new`` bytes.

        Returns ``False`` (and charges nothing) when growing it would go over
        the limit; shrinking always succeeds.
        """
        if new > held and self.used + new - held > self.limit:
            return False
        self.used += new - held
        return True


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

    def __init__(
        self,
        stream: trio.SocketStream,
        router: Router,
        limits: Limits | None = None,
        budget: FrameBudget | None = None,
    ) -> None:
        self.id = next(_ids)
        self._stream = stream
        self._router = router
        self._limits = limits or Limits()
        self._budget = budget or FrameBudget(self._limits.partial_frame_budget)
        self._decoder = Decoder(self._limits.max_message_size, max_values=MAX_VALUES)
        self.encoder = Encoder()
        self._send_lock = trio.StrictFIFOLock()
        self._calls: dict[int, trio.CancelScope] = {}
        self._cancelled: set[int] = set()
        self._in_flight = trio.Semaphore(MAX_IN_FLIGHT)
        self._on_close: list[Callable[[], None]] = []
        self._closed = False
        self._held = 0
        """Bytes of this connection's partial frame charged to the budget."""
        self._frame_deadline = math.inf
        """When the started frame must be whole (``inf``: none started)."""

    def on_close(self, callback: Callable[[], None]) -> None:
        if self._closed:
            callback()
        else:
            self._on_close.append(callback)

    async def send(self, frame: bytes) -> None:
        """Write one frame (waits while the peer does not read).

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

    async def _send_quietly(self, frame: bytes) -> None:
        """Send, or drop the frame if the peer has gone (its reply has no reader)."""
        with contextlib.suppress(errdefs.Canceled):
            await self.send(frame)

    async def serve(self) -> None:
        """Serve until the peer closes, breaks the protocol or overstays a frame.

        Raises:
            Exception: only for a bug in this module; :class:`RpcServer` logs it
                and the connection is closed all the same.
        """
        try:
            async with trio.open_nursery() as nursery:
                try:
                    await self._reader(nursery)
                finally:
                    nursery.cancel_scope.cancel()
        finally:
            self._closed = True
            self._budget.resize(self._held, 0)
            self._held = 0
            self._decoder.close()  # its buffer goes now, not when the connection is collected
            for callback in self._on_close:
                try:
                    callback()
                except Exception:
                    log.exception("on_close callback failed")
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(self._stream)

    async def _read(self) -> bytes | None:
        try:
            data = await self._stream.receive_some(READ_SIZE)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return None
        return data or None

    async def _receive(self) -> bytes | None:
        """The next bytes; ``None`` once the peer closed or its frame's deadline passed."""
        if self._frame_deadline == math.inf:  # no frame started: wait as long as it takes
            return await self._read()
        with trio.move_on_at(self._frame_deadline):
            return await self._read()
        timeout = self._limits.frame_timeout
        await self._refuse(
            errdefs.DeadlineExceeded(
                f"frame not received whole within {timeout:g}s of its first byte; connection closed"
            ),
            self._decoder.pending_msgid(),
        )
        return None

    async def _refuse(
        self, error: errdefs.ErrdefsError, msgid: int | None, *, level: int = logging.INFO
    ) -> None:
        """Say why the connection is being closed, to the request being received."""
        log.log(level, "conn %d: closing: %s", self.id, error.message)
        if msgid is not None:
            with trio.move_on_after(REFUSAL_SEND_TIMEOUT):
                await self._send_quietly(self.encoder.error(msgid, error))

    async def _reader(self, nursery: trio.Nursery) -> None:
        while True:
            data = await self._receive()
            if data is None:
                return
            fatal: ProtocolError | None = None
            level = logging.DEBUG  # a peer's protocol errors are its own business
            batch: list[Message | ProtocolError] = []
            try:
                self._decoder.feed(data)
            except ProtocolError as exc:
                fatal = exc
            else:
                fatal = self._drain(batch)
            if fatal is None and not self._charge():
                level = logging.INFO
                fatal = ProtocolError(
                    errdefs.ResourceExhausted(
                        "partial frames of all connections would exceed the budget of "
                        f"{self._budget.limit} bytes (rpc partial_frame_budget); "
                        "connection closed, retry"
                    ),
                    self._decoder.pending_msgid(),
                )
            for item in batch:
                if self._closed:  # the peer is gone: serve nothing it can no longer read
                    return
                if not await self._dispatch(item, nursery):
                    return
            if fatal is not None:
                # The stream cannot be trusted any more: answer what can be answered, close.
                await self._refuse(fatal.error, fatal.msgid, level=level)
                return
            if self._decoder.partial == 0:
                self._frame_deadline = math.inf
            elif batch or self._frame_deadline == math.inf:
                # a frame started in these bytes: it is timed from now, after the
                # dispatch above (the daemon's own waits are not the peer's)
                self._frame_deadline = trio.current_time() + self._limits.frame_timeout

    def _drain(self, batch: list[Message | ProtocolError]) -> ProtocolError | None:
        """Take the whole messages out of the decoder; the fatal error, if any."""
        while True:
            try:
                batch.append(next(self._decoder))
            except StopIteration:
                return None
            except ProtocolError as exc:
                if exc.msgid is None or (batch and batch[-1] is exc):
                    return exc  # (the same error twice: the decoder is broken)
                batch.append(exc)

    def _charge(self) -> bool:
        """Charge the partial frame now held to the budget; ``False`` if over it."""
        partial = self._decoder.partial
        if not self._budget.resize(self._held, partial):
            return False
        self._held = partial
        return True

    async def _dispatch(self, item: Message | ProtocolError, nursery: trio.Nursery) -> bool:
        """Serve one message; whatever goes wrong becomes its error reply.

        Returns ``False`` when the connection must close.
        """
        if isinstance(item, ProtocolError):
            if item.msgid is not None:
                await self._send_error(item.msgid, item.error)
            return True
        if isinstance(item, Notification):
            self._notification(item)
            return True
        if not isinstance(item, Request):
            error = errdefs.InvalidArgument("clients do not send responses")
            await self._refuse(error, None, level=logging.DEBUG)
            return False
        try:
            await self._request(item, nursery)
        except ProtocolError as exc:
            await self._send_error(item.msgid, exc.error)
        except Exception:
            log.exception("conn %d: %s failed", self.id, item.method)
            await self._send_error(item.msgid, errdefs.Internal("internal error"))
        return True

    async def _send_error(self, msgid: int, exc: errdefs.ErrdefsError) -> None:
        await self._send_quietly(self.encoder.error(msgid, exc))

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
        handed_over = False
        try:
            try:
                with trio.CancelScope(deadline=scope.deadline) as first:
                    wait = await handler(call)
            except errdefs.ErrdefsError as exc:
                raise ProtocolError(exc, req.msgid) from None
            if first.cancelled_caught:
                raise ProtocolError(self._cancel_error(req.msgid, meta.timeout), req.msgid)
            if not isinstance(wait, Done):
                nursery.start_soon(self._finish, req.msgid, req.method, wait, scope, meta.timeout)
                handed_over = True
                return
        finally:
            if not handed_over:
                self._finished(req.msgid)
        # answered in phase one (version, introspection): no task, no hop; a peer
        # gone meanwhile is no error (its reply has no reader)
        await self._send_quietly(self._response(req.msgid, req.method, wait.result))

    def _response(self, msgid: int, name: str, result: Any) -> bytes:
        """The response frame for ``result``; ``Internal`` if it cannot be encoded (a bug)."""
        try:
            return self.encoder.response(msgid, None, unstructure(result))
        except Exception:
            log.exception("conn %d: %s: the response cannot be encoded", self.id, name)
            return self.encoder.error(msgid, errdefs.Internal("internal error"))

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
                result = await wait()
            if scope.cancelled_caught:
                error = self._cancel_error(msgid, limit)
        except errdefs.ErrdefsError as exc:
            # an answer, not a bug: kept without its traceback, which would hold
            # this frame (and the request) in a cycle until the collector runs
            error = exc.with_traceback(None)
        except Exception:
            log.exception("conn %d: %s failed", self.id, name)
            error = errdefs.Internal("internal error")
        finally:
            self._finished(msgid)
        frame = (
            self._response(msgid, name, result)
            if error is None
            else self.encoder.error(msgid, error)
        )
        await self._send_quietly(frame)


class RpcServer:
    """Accepts on ``listeners`` and serves each connection with ``router``.

    Two tasks run it: :meth:`serve_connections` owns the connections (started
    first, by the daemon), :meth:`accept` the accept loop (a supervised child:
    it may crash and be restarted while the connections go on). :meth:`aclose`
    ends both: the listeners close first, then every connection.
    """

    def __init__(
        self,
        listeners: Sequence[trio.abc.Listener[trio.SocketStream]],
        router: Router,
        limits: Limits | None = None,
    ) -> None:
        self.listeners = list(listeners)
        self.router = router
        self.limits = limits or Limits()
        self.budget = FrameBudget(self.limits.partial_frame_budget)
        self._connections: trio.Nursery | None = None
        self._connections_scope = trio.CancelScope()
        self._accept_scope: trio.CancelScope | None = None
        self._closed = False

    async def serve_connections(self, *, task_status: trio.TaskStatus[Any]) -> None:
        """Hold the connection nursery until :meth:`aclose`; ready at once."""
        with self._connections_scope:
            async with trio.open_nursery() as nursery:
                self._connections = nursery
                task_status.started(self)
                await trio.sleep_forever()
        self._connections = None

    async def accept(self, path: str = "rpc", *, task_status: trio.TaskStatus[Any]) -> None:
        """Accept until :meth:`stop_accepting` or :meth:`aclose` (a supervisor's start
        function). Accept errors the kernel recovers from (``EMFILE``...) are retried
        after :data:`ACCEPT_RETRY`; anything else ends it with that error."""
        if self._connections is None and not self._closed:
            raise RuntimeError("serve_connections is not running")
        with trio.CancelScope() as scope:
            self._accept_scope = scope
            if self._closed:
                scope.cancel()
            async with trio.open_nursery() as nursery:
                for listener in self.listeners:
                    nursery.start_soon(self._accept_one, listener)
                task_status.started(self)
        self._accept_scope = None

    async def stop_accepting(self) -> None:
        """End :meth:`accept`; the listeners stay open (connections queue in the backlog)."""
        if self._accept_scope is not None:
            self._accept_scope.cancel()

    async def stop(self) -> None:
        """The supervisor's graceful stop of :meth:`accept` (see :meth:`stop_accepting`)."""
        await self.stop_accepting()

    async def aclose(self) -> None:
        """Stop accepting, close the listeners, then every connection."""
        self._closed = True
        await self.stop_accepting()
        for listener in self.listeners:
            with contextlib.suppress(Exception):
                await listener.aclose()
        self._connections_scope.cancel()

    async def _accept_one(self, listener: trio.abc.Listener[trio.SocketStream]) -> None:
        delay = ACCEPT_RETRY
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                # EMFILE, ENFILE, ENOBUFS, ENOMEM, ECONNABORTED...: the listener is
                # fine, the moment is not (trio.serve_listeners retries the first four)
                log.error("accept failed: %s; retrying in %.1fs", exc, delay)
                await trio.sleep(delay)
                delay = min(delay * 2, ACCEPT_RETRY_MAX)
                continue
            delay = ACCEPT_RETRY
            if self._connections is None:
                await trio.aclose_forcefully(stream)
                return
            self._connections.start_soon(self._handle, stream)

    async def _handle(self, stream: trio.SocketStream) -> None:
        """Serve one connection; nothing it raises reaches the connection nursery."""
        conn = Connection(stream, self.router, self.limits, self.budget)
        try:
            await conn.serve()
        except* Exception as group:
            log.error(
                "conn %d: closed by an internal error",
                conn.id,
                exc_info=group.exceptions[0] if len(group.exceptions) == 1 else group,
            )


async def serve_rpc(
    listeners: Sequence[trio.SocketListener],
    router: Router,
    *,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    limits: Limits | None = None,
    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``router`` on ``listeners`` until cancelled (an unsupervised
    :class:`RpcServer`, for tests and embedders; the daemon supervises its accept loop)."""
    server = RpcServer(listeners, router, limits or Limits(max_message_size=max_message_size))
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve_connections)
            await nursery.start(server.accept)
            task_status.started(server)
    finally:
        with trio.CancelScope(shield=True):
            await server.aclose()


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
