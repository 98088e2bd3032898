"""The shim's msgpack-RPC: a threaded server and the event publisher.

The same framing as the daemon (``docs/protocol.md``), written again on the
stdlib because the shim may not import ``attrs`` nor ``trio``::

    request   [0, msgid, method, [request, meta]]
    response  [1, msgid, error, result]     error = {"code": <errdefs name>, "message"}

One thread per connection reads requests and answers them in order;
``wait`` blocks, so it is answered from a thread of its own. Events go to the
daemon's ``events.forward`` from one publisher thread that keeps them in
order and retries while the daemon is unreachable.
"""

from __future__ import annotations

import collections
import socket
import sys
import threading
import time
from collections.abc import Callable

import msgpack

from pycontainerd.api import errdefs

REQUEST, RESPONSE = 0, 1
MAX_MESSAGE_SIZE = 16 << 20
MAX_QUEUED_EVENTS = 2048
_FIRST_BACKOFF = 0.05

TYPE_CHECKING = False  # typing costs the shim 1 MiB of RSS: imported for mypy only
if TYPE_CHECKING:
    from typing import Any, TypeAlias

    Handler: TypeAlias = Callable[[dict[str, Any]], dict[str, Any]]


def log(message: str) -> None:
    """One line to the shim's stderr (``shim.log`` in the bundle once daemonized)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    sys.stderr.write(f"{stamp} shim: {message}\n")
    sys.stderr.flush()


def timestamp(unix_ns: int) -> msgpack.Timestamp:
    """The wire time (msgpack ext -1) of ``unix_ns`` nanoseconds since the epoch."""
    return msgpack.Timestamp.from_unix_nano(unix_ns)


def _pack(obj: object) -> bytes:
    data: bytes = msgpack.packb(obj, use_bin_type=True)
    return data


class Server:
    """Serve ``handlers`` on a listening Unix socket, one thread per connection.

    ``handlers`` maps a method name to a function of the request map that
    returns the result map or raises an errdefs error; names in ``blocking``
    are answered from their own thread. Unknown methods are
    ``NotImplemented``; any other exception becomes ``Internal`` and is logged.
    """

    def __init__(
        self,
        listener: socket.socket,
        handlers: dict[str, Handler],
        blocking: frozenset[str] = frozenset(),
        debug: bool = False,
    ) -> None:
        self._listener = listener
        self._handlers = handlers
        self._blocking = blocking
        self._debug = debug

    def serve_forever(self) -> None:
        """Accept connections until the listener is closed."""
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve_conn, args=(conn,), daemon=True).start()

    def _serve_conn(self, conn: socket.socket) -> None:
        unpacker = msgpack.Unpacker(
            raw=False, strict_map_key=False, max_buffer_size=MAX_MESSAGE_SIZE
        )
        lock = threading.Lock()
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                unpacker.feed(data)
                for msg in unpacker:
                    self._dispatch(conn, lock, msg)
        except (OSError, ValueError) as exc:
            log(f"connection closed: {exc}")
        finally:
            conn.close()

    def _dispatch(self, conn: socket.socket, lock: threading.Lock, msg: object) -> None:
        if not (isinstance(msg, list | tuple) and len(msg) == 4 and msg[0] == REQUEST):
            return  # notifications and responses: nothing to answer
        msgid, method, params = msg[1], msg[2], msg[3]
        if isinstance(method, bytes):
            method = method.decode("utf-8", "replace")
        request = params[0] if isinstance(params, list | tuple) and params else {}
        if method in self._blocking:
            threading.Thread(
                target=self._answer, args=(conn, lock, msgid, method, request), daemon=True
            ).start()
        else:
            self._answer(conn, lock, msgid, method, request)

    def _answer(
        self, conn: socket.socket, lock: threading.Lock, msgid: object, method: object, req: object
    ) -> None:
        error: dict[str, str] | None = None
        result: dict[str, Any] | None = None
        handler = self._handlers.get(method) if isinstance(method, str) else None
        try:
            if handler is None:
                raise errdefs.NotImplemented_(f"method {method!r} is not implemented")
            if req is None:
                req = {}
            if not isinstance(req, dict):
                raise errdefs.InvalidArgument("request: expected a map")
            result = handler(req)
        except errdefs.ErrdefsError as exc:
            error = errdefs.to_wire(exc)
        except Exception as exc:
            log(f"{method}: internal error: {exc!r}")
            error = {"code": "Internal", "message": f"{method}: {exc}"}
        if self._debug:
            log(f"{method} {req!r} -> {error or 'ok'}")
        frame = _pack([RESPONSE, msgid, error, result])
        with lock:
            try:
                conn.sendall(frame)
            except OSError as exc:
                log(f"{method}: cannot answer: {exc}")


class Publisher:
    """Forward event envelopes to the daemon's ``events.forward``, in order.

    Events queue up (at most 2048, the oldest dropped beyond) while the
    daemon is unreachable and are retried with a growing backoff; an error
    answer drops the event (the daemon refused it: retrying cannot help).
    ``address`` empty: events are only logged.
    """

    def __init__(self, address: str, namespace: str) -> None:
        self.address = address.removeprefix("unix://")
        self.namespace = namespace
        self._queue: collections.deque[dict[str, Any]] = collections.deque(maxlen=MAX_QUEUED_EVENTS)
        self._cond = threading.Condition()
        self._sending = False
        self._sock: socket.socket | None = None
        self._msgid = 0
        if self.address:
            threading.Thread(target=self._run, daemon=True).start()

    def publish(self, topic: str, event: dict[str, Any]) -> None:
        """Queue one event, stamped now."""
        envelope = {
            "timestamp": timestamp(time.time_ns()),
            "namespace": self.namespace,
            "topic": topic,
            "event": event,
        }
        if not self.address:
            return
        with self._cond:
            self._queue.append(envelope)
            self._cond.notify_all()

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the queue to drain; True when it did."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._sending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def _run(self) -> None:
        backoff = _FIRST_BACKOFF
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                envelope = self._queue[0]
                self._sending = True
            try:
                self._forward(envelope)
            except OSError as exc:
                self._close()
                with self._cond:
                    self._sending = False
                if backoff == _FIRST_BACKOFF:  # once per outage, not once per attempt
                    log(f"events.forward {envelope['topic']}: daemon unreachable ({exc}), retrying")
                time.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            backoff = _FIRST_BACKOFF
            with self._cond:
                if self._queue and self._queue[0] is envelope:
                    self._queue.popleft()
                self._sending = False
                self._cond.notify_all()

    def _close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _forward(self, envelope: dict[str, Any]) -> None:
        if self._sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(10.0)
            try:
                sock.connect(self.address)
            except OSError:
                sock.close()
                raise
            self._sock = sock
        self._msgid = (self._msgid + 1) & 0xFFFFFFFF
        msgid = self._msgid
        self._sock.sendall(_pack([REQUEST, msgid, "events.forward", [{"envelope": envelope}, {}]]))
        unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, timestamp=0)
        while True:
            data = self._sock.recv(65536)
            if not data:
                raise ConnectionResetError("daemon closed the connection")
            unpacker.feed(data)
            for msg in unpacker:
                if isinstance(msg, list) and len(msg) == 4 and msg[:2] == [RESPONSE, msgid]:
                    if msg[2] is not None:
                        log(f"events.forward {envelope['topic']} refused: {msg[2]!r}")
                    return
