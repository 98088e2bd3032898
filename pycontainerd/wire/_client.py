"""The blocking, thread-safe msgpack-RPC client. It imports no Trio, so a cold
``pyctr`` starts fast.

One socket and no background thread: any number of threads may call at once,
their requests are pipelined, and whichever caller is waiting reads the socket
for everyone (leader/follower), so a single-threaded caller pays no thread
hand-off per call::

    with Client("/run/pycontainerd/pycontainerd.sock") as c:
        c.call("namespaces.list", {})
        with c.stream("events.subscribe", {"since": 0}) as events:
            for envelope in events:
                ...
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import select
import socket
import threading
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from pycontainerd.api import errdefs

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

DEFAULT_ADDRESS = "/run/pycontainerd/pycontainerd.sock"
STREAM_BUFFER = 1024
"""Stream items buffered per stream; past it the reader thread waits (backpressure)."""
RECV_SIZE = 1 << 18
_UNSET: Any = object()


class ConnectionLost(errdefs.Unavailable):
    """The connection to the daemon broke; the call's outcome is unknown."""


class _Waiter:
    __slots__ = ("done", "error", "items", "result")

    def __init__(self, stream: bool) -> None:
        self.done = threading.Event()
        self.result: Any = None
        self.error: errdefs.ErrdefsError | None = None
        self.items: queue.Queue[Any] | None = queue.Queue(STREAM_BUFFER) if stream else None

    def finish(self, error: errdefs.ErrdefsError | None, result: Any) -> None:
        self.error, self.result = error, result
        self.done.set()
        if self.items is not None:
            self.items.put(_END)


_END = object()


class Stream:
    """The items of one server stream; iterate, then read :attr:`result`."""

    def __init__(self, client: Client, msgid: int, waiter: _Waiter) -> None:
        self._client = client
        self.msgid = msgid
        self._waiter = waiter
        self._ended = False

    def __iter__(self) -> Iterator[Any]:
        assert self._waiter.items is not None
        while not self._ended:
            self._client._wait(self._waiter, None, item=True)
            item = self._waiter.items.get()
            if item is _END:
                self._ended = True
                if self._waiter.error is not None:
                    raise self._waiter.error
                return
            yield item

    @property
    def result(self) -> Any:
        """The final response (after the iteration ended)."""
        return self._waiter.result

    def cancel(self) -> None:
        """Ask the server to end the stream (it answers ``Canceled``)."""
        if not self._waiter.done.is_set():
            self._client.notify("call.cancel", [self.msgid])

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()


class PendingCall:
    """A request in flight (see :meth:`Client.request`)."""

    def __init__(
        self, client: Client, method: str, msgid: int, waiter: _Waiter, timeout: float | None
    ) -> None:
        self._client = client
        self._method = method
        self._msgid = msgid
        self._waiter = waiter
        self._timeout = timeout
        self._sent = time.monotonic()

    @property
    def done(self) -> bool:
        return self._waiter.done.is_set()

    def wait(self) -> Any:
        """The result map.

        Raises:
            ErrdefsError: the daemon's error.
            DeadlineExceeded: no answer within the call's timeout.
            ConnectionLost: the connection broke.
        """
        deadline = None if self._timeout is None else self._sent + self._timeout + 1.0
        if not self._client._wait(self._waiter, deadline):
            self._client.notify("call.cancel", [self._msgid])
            self._client._waiters.pop(self._msgid, None)
            raise errdefs.DeadlineExceeded(f"{self._method}: no answer in {self._timeout:g}s")
        if self._waiter.error is not None:
            raise self._waiter.error
        return self._waiter.result


class Client:
    """A connection to the daemon.

    Args:
        address: the daemon's Unix socket.
        namespace: sent as ``meta.namespace`` unless a call names another; ``None``
            sends none.
        timeout: default per-call timeout in seconds (``None``: wait forever).
    """

    def __init__(
        self,
        address: str = DEFAULT_ADDRESS,
        *,
        namespace: str | None = "default",
        timeout: float | None = None,
        max_message_size: int = 16 << 20,
    ) -> None:
        self.address = address
        self.namespace = namespace
        self.timeout = timeout
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._sock.connect(address)
        except OSError as exc:
            self._sock.close()
            raise ConnectionLost(f"cannot connect to {address}: {exc.strerror or exc}") from None
        self._decoder = Decoder(max_message_size)
        self._encoder = Encoder()
        self._send_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._waiters: dict[int, _Waiter] = {}
        self._lost: ConnectionLost | None = None
        self._read_lock = threading.Lock()

    # -- public ----------------------------------------------------------------

    def call(
        self,
        method: str,
        request: dict[str, Any] | None = None,
        *,
        namespace: str | None = _UNSET,
        timeout: float | None = _UNSET,
        lease: str | None = None,
    ) -> Any:
        """Call ``method`` and return its result map.

        Raises:
            ErrdefsError: the daemon's error (its class is the error's code).
            DeadlineExceeded: no answer within ``timeout``.
            ConnectionLost: the connection broke.
        """
        return self.request(
            method, request, namespace=namespace, timeout=timeout, lease=lease
        ).wait()

    def request(
        self,
        method: str,
        request: dict[str, Any] | None = None,
        *,
        namespace: str | None = _UNSET,
        timeout: float | None = _UNSET,
        lease: str | None = None,
    ) -> PendingCall:
        """Send ``method`` now and return at once; :meth:`PendingCall.wait` gets
        the result. Requests on one connection reach their actor in the order
        sent, so a caller may pipeline (``content.write``)."""
        timeout = self.timeout if timeout is _UNSET else timeout
        msgid, waiter = self._start(method, request, namespace, timeout, lease, stream=False)
        return PendingCall(self, method, msgid, waiter, timeout)

    def stream(
        self,
        method: str,
        request: dict[str, Any] | None = None,
        *,
        namespace: str | None = _UNSET,
        timeout: float | None = None,
        lease: str | None = None,
    ) -> Stream:
        """Start a server stream; iterate the returned :class:`Stream` for its items."""
        msgid, waiter = self._start(method, request, namespace, timeout, lease, stream=True)
        return Stream(self, msgid, waiter)

    def notify(self, method: str, params: Any) -> None:
        """Send a notification (``call.cancel``)."""
        with self._send_lock:
            frame = self._encoder.notification(method, params)
            self._sendall(frame)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------

    def _start(
        self,
        method: str,
        request: dict[str, Any] | None,
        namespace: str | None,
        timeout: float | None,
        lease: str | None,
        *,
        stream: bool,
    ) -> tuple[int, _Waiter]:
        if self._lost is not None:
            raise self._lost
        meta = make_meta(self.namespace if namespace is _UNSET else namespace, lease, timeout)
        waiter = _Waiter(stream)
        with self._send_lock:
            msgid = next(self._ids) % (MAX_MSGID + 1)
            self._waiters[msgid] = waiter
            frame = self._encoder.request(msgid, method, request or {}, meta)
            self._sendall(frame)
        return msgid, waiter

    def _sendall(self, frame: bytes) -> None:
        try:
            self._sock.sendall(frame)
        except OSError as exc:
            raise ConnectionLost(f"connection to {self.address} lost: {exc}") from None

    def _wait(self, waiter: _Waiter, deadline: float | None, *, item: bool = False) -> bool:
        """Until ``waiter`` is done (or, with ``item``, has an item): read the
        socket ourselves when no other thread is, else let the reader serve us."""

        def ready() -> bool:
            if waiter.done.is_set():
                return True
            return item and waiter.items is not None and not waiter.items.empty()

        while not ready():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            if self._read_lock.acquire(blocking=False):
                try:
                    while not ready():
                        remaining = None if deadline is None else deadline - time.monotonic()
                        if remaining is not None and remaining <= 0:
                            return False
                        self._read_once(remaining)
                finally:
                    self._read_lock.release()
            else:
                waiter.done.wait(0.001 if remaining is None else min(0.001, remaining))
        return True

    def _read_once(self, timeout: float | None) -> None:
        if self._lost is not None:
            raise self._lost
        if timeout is not None:
            ready, _, _ = select.select([self._sock], [], [], timeout)
            if not ready:
                return
        try:
            data = self._sock.recv(RECV_SIZE)
            if not data:
                raise OSError("connection closed by the daemon")
            self._decoder.feed(data)
            for msg in self._decoder:
                self._deliver(msg)
        except ProtocolError as exc:
            self._lose(f"protocol error from the daemon: {exc}")
        except OSError as exc:
            self._lose(f"connection lost: {exc}")

    def _lose(self, reason: str) -> None:
        self._lost = ConnectionLost(reason)
        for waiter in list(self._waiters.values()):
            waiter.finish(ConnectionLost(reason), None)
        self._waiters.clear()

    def _deliver(self, msg: Any) -> None:
        if isinstance(msg, Response):
            waiter = self._waiters.pop(msg.msgid, None)
            if waiter is not None:
                error = None if msg.error is None else errdefs.from_wire(msg.error)
                waiter.finish(error, msg.result)
        elif isinstance(msg, Notification) and msg.method == "stream.item":
            got = stream_item(msg.params)
            waiter = None if got is None else self._waiters.get(got[0])
            if got is not None and waiter is not None and waiter.items is not None:
                waiter.items.put(got[1])


def default_address() -> str:
    return os.environ.get("PYCONTAINERD_ADDRESS", DEFAULT_ADDRESS)
