"""The msgpack-RPC codec, sans IO: bytes in, messages out, and back.

It imports neither trio nor sockets, so the daemon, the blocking client and
the stdlib-only shim share it, and its tests are bytes only::

    dec = Decoder(max_message_size=16 << 20)
    dec.feed(data)
    for msg in dec:            # Request | Response | Notification
        ...                    # ProtocolError: answer it (msgid known) or close
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs
import msgpack

from pycontainerd.api import bounds, errdefs
from pycontainerd.api.rpc import Meta

REQUEST, RESPONSE, NOTIFICATION = 0, 1, 2
MAX_MSGID = 2**32 - 1
DEFAULT_MAX_MESSAGE_SIZE = 16 << 20
MAX_TIMEOUT = 30 * 24 * 3600.0
"""The longest ``meta.timeout`` (30 days): longer is ``InvalidArgument``, not forever."""
MAX_ERROR_MESSAGE = 64 << 10
"""Bytes (UTF-8) of an error response's message at most; longer ones are cut and marked."""
TRUNCATED = "... (truncated)"
SHRINK_ABOVE = 1 << 20
"""A decoder that held more than this of one frame drops its buffer once the frame is whole."""
MAX_VALUES = bounds.MAX_VALUES
MAX_CONTAINER_ITEMS = bounds.MAX_ITEMS


@attrs.frozen
class Request:
    msgid: int
    method: str
    request: Any
    meta: Any = None
    """``params[1]`` as decoded (validate with :func:`parse_meta`); ``None`` if absent."""


@attrs.frozen
class Response:
    msgid: int
    error: Any
    result: Any


@attrs.frozen
class Notification:
    method: str
    params: Any


Message = Request | Response | Notification


class ProtocolError(Exception):
    """The peer broke the protocol.

    ``msgid`` is set when the broken message's id could be read: answer
    ``error`` to it and go on. Otherwise the stream cannot be trusted: close.
    """

    def __init__(self, error: errdefs.ErrdefsError, msgid: int | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.msgid = msgid

    @property
    def fatal(self) -> bool:
        return self.msgid is None


def _method(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):  # pre-2013 msgpack-RPC packs strings as raw
        try:
            return value.decode()
        except UnicodeDecodeError:
            return None
    return None


def _msgid(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_MSGID:
        return value
    return None


def parse(obj: Any) -> Message:
    """Check one decoded msgpack value is a msgpack-RPC message.

    Raises:
        ProtocolError: with ``msgid`` when it can be answered.
    """
    if not isinstance(obj, list | tuple) or not obj:
        raise ProtocolError(errdefs.InvalidArgument("message is not a msgpack-RPC array"))
    kind = obj[0]
    if kind == REQUEST and not isinstance(kind, bool) and len(obj) == 4:
        msgid = _msgid(obj[1])
        if msgid is None:
            raise ProtocolError(errdefs.InvalidArgument("msgid must be a uint32"))
        method = _method(obj[2])
        if method is None:
            raise ProtocolError(errdefs.InvalidArgument("method must be a string"), msgid)
        params = obj[3]
        if not isinstance(params, list | tuple) or len(params) not in (1, 2):
            raise ProtocolError(
                errdefs.InvalidArgument("params must be [request] or [request, meta]"), msgid
            )
        return Request(msgid, method, params[0], params[1] if len(params) == 2 else None)
    if kind == RESPONSE and not isinstance(kind, bool) and len(obj) == 4:
        msgid = _msgid(obj[1])
        if msgid is None:
            raise ProtocolError(errdefs.InvalidArgument("msgid must be a uint32"))
        return Response(msgid, obj[2], obj[3])
    if kind == NOTIFICATION and not isinstance(kind, bool) and len(obj) == 3:
        method = _method(obj[1])
        if method is None:
            raise ProtocolError(errdefs.InvalidArgument("notification method must be a string"))
        return Notification(method, obj[2])
    raise ProtocolError(errdefs.InvalidArgument("message is not a msgpack-RPC envelope"))


def parse_meta(obj: Any) -> Meta:
    """``params[1]`` as :class:`Meta`, strictly typed.

    ``timeout`` is a number of seconds, finite, above 0 and at most
    :data:`MAX_TIMEOUT` (30 days): NaN, infinities, 0, negatives, huge values
    and non-numbers are ``InvalidArgument`` (a call without a timeout has none).

    Raises:
        errdefs.InvalidArgument: naming the meta key.
    """
    if obj is None:
        return Meta()
    if not isinstance(obj, dict):
        raise errdefs.InvalidArgument("meta: expected map")
    namespace = obj.get("namespace")
    lease = obj.get("lease")
    timeout = obj.get("timeout")
    if namespace is not None and not isinstance(namespace, str):
        raise errdefs.InvalidArgument("meta.namespace: expected str")
    if lease is not None and not isinstance(lease, str):
        raise errdefs.InvalidArgument("meta.lease: expected str")
    if timeout is not None:
        timeout = _timeout(timeout)
    return Meta(namespace=namespace or None, lease=lease or None, timeout=timeout)


def _timeout(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise errdefs.InvalidArgument(
            f"meta.timeout: expected a number of seconds, got {type(value).__name__}"
        )
    if not (0 < value <= MAX_TIMEOUT):  # NaN fails every comparison
        shown = f"{value:g}" if isinstance(value, float) else str(value)[:24]
        raise errdefs.InvalidArgument(
            f"meta.timeout: {shown} is not a finite number of seconds "
            f"above 0 and at most {MAX_TIMEOUT:g} (30 days)"
        )
    return float(value)


def bound_message(message: str) -> str:
    """``message`` cut to :data:`MAX_ERROR_MESSAGE` bytes of UTF-8, marked when cut."""
    if len(message) <= MAX_ERROR_MESSAGE // 4:  # a code point is at most 4 bytes
        return message
    data = message.encode("utf-8", "backslashreplace")
    if len(data) <= MAX_ERROR_MESSAGE:
        return message
    keep = MAX_ERROR_MESSAGE - len(TRUNCATED.encode())
    return data[:keep].decode("utf-8", "ignore") + TRUNCATED


def _peek_msgid(prefix: bytes) -> int | None:
    """The msgid of a request whose frame is too big to decode whole."""
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(prefix[:64])
    try:
        if unpacker.read_array_header() != 4 or unpacker.unpack() != REQUEST:
            return None
        return _msgid(unpacker.unpack())
    except Exception:
        return None


class _TooManyValues(Exception):
    pass


class _ValueCounter:
    """The unpacker's list and map hook: counts what one message decodes to.

    Its own object, not a method of the decoder: the unpacker holding a bound
    method would make decoder -> unpacker -> decoder a cycle, and a closed
    connection's 16 MiB buffer would wait for the cyclic collector.
    """

    __slots__ = ("limit", "values")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.values = 0

    def __call__(self, value: Any) -> Any:
        # called as each array or map of the message being decoded is complete
        self.values += len(value) + 1
        if self.values > self.limit:
            raise _TooManyValues
        return value


class Decoder:
    """Incremental decoder of a msgpack-RPC byte stream.

    :attr:`partial` is how many bytes of a started, unfinished frame it holds
    (after the whole messages are taken out): what the server charges to its
    budget for partly received frames and times with its frame deadline.

    Args:
        max_message_size: bytes of one message.
        max_values: when set (the server's side), values one message may decode
            to, arrays and maps included, and each array or map at most
            :data:`MAX_CONTAINER_ITEMS` long; a message over either is refused
            while it decodes (``ResourceExhausted``), so what it costs is
            bounded by the limit, not by what its bytes expand to. Clients
            leave it unset: a response may list 100 000 blobs.
    """

    def __init__(
        self, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE, *, max_values: int | None = None
    ) -> None:
        self.max_message_size = max_message_size
        self.max_values = max_values
        self._counter = None if max_values is None else _ValueCounter(max_values)
        self._broken: ProtocolError | None = None
        self._unpacker = self._new_unpacker()
        # The first bytes of the message being received, to answer its msgid
        # if it turns out too big: it starts at the unpacker's position, which
        # after a drain lies in the last chunk fed.
        self._head = b""
        self._head_at = 0
        self._last = b""
        self._last_at = 0
        self._fed = 0
        self._boundary = 0
        self._held_most = 0

    def _new_unpacker(self) -> msgpack.Unpacker:
        if self._counter is None:
            return msgpack.Unpacker(
                raw=False,
                timestamp=3,
                strict_map_key=False,
                max_buffer_size=self.max_message_size,
            )
        return msgpack.Unpacker(
            raw=False,
            timestamp=3,
            strict_map_key=False,
            max_buffer_size=self.max_message_size,
            max_array_len=MAX_CONTAINER_ITEMS,
            max_map_len=MAX_CONTAINER_ITEMS,
            list_hook=self._counter,
            object_hook=self._counter,
        )

    @property
    def partial(self) -> int:
        """Bytes fed that are not part of a message taken out yet."""
        return self._fed - self._boundary

    def _sync_head(self) -> None:
        start = self._boundary
        if start != self._head_at:
            offset = start - self._last_at
            self._head = self._last[offset : offset + 64] if offset >= 0 else b""
            self._head_at = start

    def pending_msgid(self) -> int | None:
        """The msgid of the request being received, if its first bytes tell it."""
        if self.partial == 0:
            return None
        self._sync_head()
        return _peek_msgid(self._head)

    def feed(self, data: bytes) -> None:
        """Add received bytes.

        Raises:
            ProtocolError: a message is larger than ``max_message_size``; the
                stream is unusable afterwards (``msgid`` set if it could be read,
                so the caller can answer before closing).
        """
        if self._broken is not None:
            raise self._broken
        self._sync_head()
        if len(self._head) < 64:
            self._head += data[: 64 - len(self._head)]
        self._last, self._last_at = data, self._fed
        self._fed += len(data)
        try:
            self._unpacker.feed(data)
        except msgpack.BufferFull:
            self._broken = ProtocolError(
                errdefs.ResourceExhausted(
                    f"message larger than the limit of {self.max_message_size} bytes"
                ),
                _peek_msgid(self._head),
            )
            raise self._broken from None
        self._held_most = max(self._held_most, self.partial)

    def __iter__(self) -> Iterator[Message]:
        return self

    def __next__(self) -> Message:
        """The next whole message.

        Raises:
            StopIteration: need more bytes.
            ProtocolError: the bytes are not msgpack (fatal) or not an envelope.
        """
        if self._broken is not None:
            raise self._broken
        try:
            obj = next(self._unpacker)
        except StopIteration:
            if self.partial == 0 and self._held_most > SHRINK_ABOVE:
                self._shrink()
            raise
        except _TooManyValues:
            self._sync_head()
            self._broken = ProtocolError(
                errdefs.ResourceExhausted(
                    f"message decodes to more than {self.max_values} values "
                    "(array items, map entries, arrays and maps)"
                ),
                _peek_msgid(self._head),
            )
            raise self._broken from None
        except ValueError as exc:
            if "exceeds max_" not in str(exc):
                self._broken = ProtocolError(errdefs.InvalidArgument(f"not msgpack: {exc}"))
                raise self._broken from None
            self._sync_head()
            self._broken = ProtocolError(
                errdefs.ResourceExhausted(
                    f"an array or map holds more than {MAX_CONTAINER_ITEMS} items"
                ),
                _peek_msgid(self._head),
            )
            raise self._broken from None
        except Exception as exc:  # FormatError, StackError, ExtraData, ...
            self._broken = ProtocolError(errdefs.InvalidArgument(f"not msgpack: {exc}"))
            raise self._broken from None
        if self._counter is not None:
            self._counter.values = 0
        self._boundary = self._unpacker.tell()
        return parse(obj)

    def close(self) -> None:
        """Drop what the decoder holds (a closed connection's unfinished frame)."""
        self._shrink()

    def _shrink(self) -> None:
        # msgpack's buffer keeps the size of the largest frame it held: start a
        # new one, so an idle connection does not keep 16 MiB of a frame it
        # received an hour ago.
        self._unpacker = self._new_unpacker()
        self._head = self._last = b""
        self._head_at = self._last_at = self._fed = self._boundary = self._held_most = 0
        if self._counter is not None:
            self._counter.values = 0


def make_meta(namespace: str | None, lease: str | None, timeout: float | None) -> dict[str, Any]:
    """The ``params[1]`` map a client sends (empty keys left out)."""
    meta: dict[str, Any] = {}
    if namespace:
        meta["namespace"] = namespace
    if lease:
        meta["lease"] = lease
    if timeout is not None:
        meta["timeout"] = timeout
    return meta


def stream_item(params: Any) -> tuple[int, Any] | None:
    """``(msgid, item)`` of a ``stream.item`` notification's params, if well formed."""
    if isinstance(params, list) and len(params) == 2 and isinstance(params[0], int):
        return params[0], params[1]
    return None


class Encoder:
    """Packs messages; not thread-safe (one per connection or per lock).

    A msgpack ``Packer`` keeps the capacity of the largest message it packed:
    after one over :data:`SHRINK_ABOVE`, the encoder starts a new one, so a
    connection that once sent a 16 MiB chunk does not hold 16 MiB for its life.
    """

    def __init__(self) -> None:
        self._packer = self._new_packer()

    @staticmethod
    def _new_packer() -> msgpack.Packer:
        return msgpack.Packer(use_bin_type=True, datetime=True)

    def _pack(self, obj: Any) -> bytes:
        out: bytes = self._packer.pack(obj)
        if len(out) > SHRINK_ABOVE:
            self._packer = self._new_packer()
        return out

    def request(self, msgid: int, method: str, request: Any, meta: dict[str, Any] | None) -> bytes:
        params = [request] if not meta else [request, meta]
        return self._pack([REQUEST, msgid, method, params])

    def response(self, msgid: int, error: Any, result: Any) -> bytes:
        return self._pack([RESPONSE, msgid, error, result])

    def error(self, msgid: int, exc: errdefs.ErrdefsError) -> bytes:
        """An error response; its message is cut to :data:`MAX_ERROR_MESSAGE` bytes
        here, the one place every error leaves the daemon through."""
        wire = errdefs.to_wire(exc)
        wire["message"] = bound_message(wire["message"])
        try:
            return self._pack([RESPONSE, msgid, wire, None])
        except UnicodeEncodeError:  # a lone surrogate in the message
            wire["message"] = wire["message"].encode("utf-8", "backslashreplace").decode()
            return self._pack([RESPONSE, msgid, wire, None])

    def notification(self, method: str, params: Any) -> bytes:
        return self._pack([NOTIFICATION, method, params])
