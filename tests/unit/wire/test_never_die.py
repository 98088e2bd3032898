"""The wire's share of issue 11, piece by piece: timeouts, bounded error
messages, partial-frame accounting, and a server a peer cannot end."""

from __future__ import annotations

import contextlib
import itertools
import math
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import attrs
import msgpack
import pytest
import trio

from pycontainerd.api import errdefs
from pycontainerd.api.rpc import Call, Method, Wait, done
from pycontainerd.supervisor import ChildSpec, Supervisor
from pycontainerd.wire import Client, open_unix_listener
from pycontainerd.wire._codec import (
    MAX_ERROR_MESSAGE,
    MAX_TIMEOUT,
    TRUNCATED,
    Decoder,
    Encoder,
    bound_message,
    parse_meta,
)
from pycontainerd.wire._server import FrameBudget, Limits, RpcServer

KiB = 1 << 10
MiB = 1 << 20

# -- meta.timeout -----------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [math.nan, math.inf, -math.inf, 0, 0.0, -1, -1e-9, MAX_TIMEOUT * 2, 1e308, 2**64, 10**400],
    ids=repr,
)
def test_timeouts_outside_0_to_max_are_invalid(value: Any) -> None:
    with pytest.raises(errdefs.InvalidArgument, match=r"meta\.timeout: .* above 0 and at most"):
        parse_meta({"timeout": value})


@pytest.mark.parametrize("value", ["1", True, False, [1], {}, b"1"], ids=repr)
def test_timeouts_that_are_not_numbers_are_invalid(value: Any) -> None:
    with pytest.raises(errdefs.InvalidArgument, match=r"meta\.timeout: expected a number"):
        parse_meta({"timeout": value})


@pytest.mark.parametrize("value", [1e-6, 1, 2.5, MAX_TIMEOUT, int(MAX_TIMEOUT)])
def test_finite_positive_timeouts_are_floats(value: float) -> None:
    assert parse_meta({"timeout": value}).timeout == float(value)


# -- error messages ----------------------------------------------------------------


def test_short_messages_are_untouched() -> None:
    text = "é" * (MAX_ERROR_MESSAGE // 2)  # 64 KiB of UTF-8 exactly
    assert bound_message(text) is text
    assert bound_message("x") == "x"


@pytest.mark.parametrize("char", ["x", "é", "€", "😀"])
def test_long_messages_are_cut_on_a_character_and_marked(char: str) -> None:
    out = bound_message(char * (MAX_ERROR_MESSAGE + 1))
    assert out.endswith(TRUNCATED)
    assert len(out.encode()) <= MAX_ERROR_MESSAGE
    assert len(out.encode()) > MAX_ERROR_MESSAGE - 4 - len(TRUNCATED)
    assert set(out[: -len(TRUNCATED)]) == {char}


def test_error_responses_are_bounded_and_always_encode() -> None:
    enc = Encoder()
    frame = enc.error(7, errdefs.InvalidArgument("x" * (10 * MiB)))
    assert len(frame) < MAX_ERROR_MESSAGE + 100
    kind, msgid, error, result = msgpack.unpackb(frame)
    assert (kind, msgid, error["code"], result) == (1, 7, "InvalidArgument", None)
    assert error["message"].endswith(TRUNCATED)
    # a lone surrogate (from a peer's bytes decoded leniently) does not break encoding
    frame = enc.error(8, errdefs.NotFound("bad \udc80 name"))
    assert msgpack.unpackb(frame)[2] == {"code": "NotFound", "message": "bad \\udc80 name"}
    assert msgpack.unpackb(enc.response(9, None, 1)) == [1, 9, None, 1]


# -- partial frames ------------------------------------------------------------------


def test_the_decoder_counts_the_bytes_of_the_unfinished_frame() -> None:
    one = msgpack.packb([0, 1, "a.b", [{}]])
    two = msgpack.packb([0, 77, "a.b", [{"pad": "y" * 1000}]])
    dec = Decoder()
    dec.feed(one + two[:10])
    assert dec.partial == len(one) + 10  # until the whole messages are taken out
    assert [m.msgid for m in dec] == [1]  # type: ignore[union-attr]
    assert dec.partial == 10
    assert dec.pending_msgid() == 77
    dec.feed(two[10:500])
    assert dec.partial == 500 and list(dec) == []
    dec.feed(two[500:])
    assert [m.msgid for m in dec] == [77]  # type: ignore[union-attr]
    assert dec.partial == 0 and dec.pending_msgid() is None


def test_the_decoder_drops_a_large_buffer_once_its_frame_is_whole() -> None:
    big = msgpack.packb([0, 5, "a.b", [{"data": b"\0" * (3 * MiB)}]])
    small = msgpack.packb([0, 6, "a.b", [{}]])
    dec = Decoder()
    for at in range(0, len(big), 64 * KiB):
        dec.feed(big[at : at + 64 * KiB])
        list(dec) if at + 64 * KiB >= len(big) else None
    assert dec.partial == 0
    unpacker = dec._unpacker
    dec.feed(small[:3])
    assert dec._unpacker is unpacker  # replaced when drained, not before
    dec.feed(small[3:])
    assert [m.msgid for m in dec] == [6]  # type: ignore[union-attr]
    # it keeps decoding (and answering msgids) after the swap
    dec.feed(small[:4])
    assert dec.partial == 4 and dec.pending_msgid() == 6


def test_the_budget_refuses_growth_past_the_limit_and_always_shrinks() -> None:
    budget = FrameBudget(100)
    assert budget.resize(0, 60)
    assert not budget.resize(0, 41)
    assert budget.used == 60
    assert budget.resize(0, 40)
    assert budget.resize(60, 10) and budget.used == 50
    assert budget.resize(40, 0) and budget.resize(10, 0) and budget.used == 0


# -- the server --------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Req:
    text: str = ""


@attrs.frozen(kw_only=True)
class Resp:
    text: Any = ""


async def bad_done(call: Call) -> Wait:
    if call.request.text == "bug":
        return done(Resp(text=object()))  # a bug: not encodable
    return done(Resp(text=call.request.text))


async def bad_wait(call: Call) -> Wait:
    async def wait() -> Resp:
        if call.request.text == "bug":
            return Resp(text=object())
        return Resp(text=call.request.text)

    return wait


ROUTER = {
    name: (Method(name=name, request=Req, response=Resp, namespaced=False), handler)
    for name, handler in [("t.done", bad_done), ("t.wait", bad_wait)]
}


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, RpcServer]]:
    """An RpcServer as the daemon runs it: its accept loop a supervised child."""
    path = str(tmp_path / "s.sock")
    listener = await open_unix_listener(path, gid=0)
    server = RpcServer([listener], ROUTER, Limits(partial_frame_budget=1 * MiB, frame_timeout=5))
    sup = Supervisor("root", strategy="rest_for_one", intensity=3, period=30.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await nursery.start(server.serve_connections)
        await sup.start_child(ChildSpec(id="rpc", start=server.accept, restart="transient"))
        yield path, server
        await server.aclose()
        await sup.stop()
        nursery.cancel_scope.cancel()


async def _sync(fn: Any, *args: Any) -> Any:
    return await trio.to_thread.run_sync(fn, *args)


async def _until(condition: Callable[[], bool]) -> None:
    with trio.fail_after(5):
        for _ in itertools.count():
            if condition():
                return
            await trio.sleep(0.01)


async def test_a_bug_in_one_request_answers_internal_and_the_connection_goes_on(
    served: tuple[str, RpcServer],
) -> None:
    path, _ = served

    def run() -> None:
        with Client(path, namespace=None) as c:
            for method in ("t.done", "t.wait"):
                with pytest.raises(errdefs.Internal):
                    c.call(method, {"text": "bug"})
                assert c.call(method, {"text": "ok"}) == {"text": "ok"}

    await _sync(run)


async def test_peers_closing_before_their_replies_end_nothing(
    served: tuple[str, RpcServer],
) -> None:
    path, _ = served

    def run() -> None:
        frames = b"".join(msgpack.packb([0, n, "t.done", [{"text": "x"}]]) for n in range(300))
        for _ in range(50):
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(path)
                s.sendall(frames)
        with Client(path, namespace=None) as c:
            assert c.call("t.done", {"text": "still"}) == {"text": "still"}

    await _sync(run)


class _CrashOnce(trio.abc.Listener[trio.SocketStream]):
    """A listener whose second accept raises a bug once ``armed`` is set."""

    def __init__(self, inner: trio.SocketListener) -> None:
        self.inner = inner
        self.armed = trio.Event()
        self.accepts = 0

    async def accept(self) -> trio.SocketStream:
        self.accepts += 1
        if self.accepts == 2:
            await self.armed.wait()
            raise RuntimeError("a bug in the accept loop")
        return await self.inner.accept()

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_crashed_accept_loop_is_restarted_and_its_connections_live_on(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "s.sock")
    listener = _CrashOnce(await open_unix_listener(path, gid=0))
    server = RpcServer([listener], ROUTER)
    sup = Supervisor("root", strategy="rest_for_one", intensity=3, period=30.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await nursery.start(server.serve_connections)
        await sup.start_child(ChildSpec(id="rpc", start=server.accept, restart="transient"))

        def before() -> Client:
            c = Client(path, namespace=None)
            assert c.call("t.done", {"text": "a"}) == {"text": "a"}
            return c

        first: Client = await _sync(before)
        listener.armed.set()
        await _until(lambda: sup.restarts > 0)
        child = sup.child("rpc")
        assert child is not None and child.status == "running"

        def after() -> None:
            # the connection accepted before the crash still works, and new ones too
            assert first.call("t.done", {"text": "b"}) == {"text": "b"}
            with Client(path, namespace=None) as c:
                assert c.call("t.wait", {"text": "c"}) == {"text": "c"}
            first.close()

        await _sync(after)
        await server.aclose()
        await sup.stop()
        nursery.cancel_scope.cancel()


async def test_closing_stops_accepting_and_ends_the_connections(
    served: tuple[str, RpcServer],
) -> None:
    path, server = served
    with socket.socket(socket.AF_UNIX) as s:
        s.setblocking(False)
        s.connect(path)
        await trio.sleep(0.1)
        await server.aclose()
        await trio.sleep(0.1)
        assert s.recv(10) == b""  # closed by the server
    with pytest.raises(OSError), socket.socket(socket.AF_UNIX) as s:
        s.connect(path)


async def test_the_budget_is_released_when_connections_close(
    served: tuple[str, RpcServer],
) -> None:
    path, server = served
    frame = msgpack.packb([0, 1, "t.done", [{"text": "ok", "pad": b"y" * (600 * KiB)}]])

    def run() -> None:
        a = socket.socket(socket.AF_UNIX)
        a.connect(path)
        a.sendall(frame[: 500 * KiB])
        with socket.socket(socket.AF_UNIX) as b:
            b.connect(path)
            b.settimeout(5)
            b.sendall(frame[: 400 * KiB])  # 900 KiB of 1 MiB
            with socket.socket(socket.AF_UNIX) as c:
                c.connect(path)
                c.settimeout(5)
                with contextlib.suppress(OSError):
                    c.sendall(frame[: 300 * KiB])
                reply = msgpack.Unpacker()
                # closed with bytes unread: the reply, then ECONNRESET instead of EOF
                with contextlib.suppress(ConnectionResetError):
                    while data := c.recv(4096):
                        reply.feed(data)
            [[_, msgid, error, _]] = list(reply)
            assert (msgid, error["code"]) == (1, "ResourceExhausted")
            a.close()  # its 500 KiB go back to the budget: b's frame fits
            time.sleep(0.2)
            b.sendall(frame[400 * KiB :])
            unpacker = msgpack.Unpacker()
            while not (got := list(unpacker)):
                unpacker.feed(b.recv(1 << 16))
            assert got[0][1:] == [1, None, {"text": "ok"}]

    await _sync(run)
    await _until(lambda: server.budget.used == 0)


@pytest.mark.parametrize("chunk", [1 << 30, 4096], ids=["whole", "chunked"])
def test_the_servers_decoder_bounds_what_a_frame_decodes_to(chunk: int) -> None:
    from pycontainerd.wire._codec import MAX_CONTAINER_ITEMS, MAX_VALUES, ProtocolError

    nested = msgpack.packb([0, 5, "m", [{"f": [[[] for _ in range(1000)]] * 300}]])
    long_array = msgpack.packb([0, 6, "m", [{"f": [0] * (MAX_CONTAINER_ITEMS + 1)}]])
    fine = msgpack.packb([0, 9, "m", [{"l": {str(i): "v" for i in range(MAX_CONTAINER_ITEMS)}}]])
    for frame, msgid in ((nested, 5), (long_array, 6)):
        dec = Decoder(max_values=MAX_VALUES)
        with pytest.raises(ProtocolError) as info:
            for at in range(0, len(frame), chunk):
                dec.feed(frame[at : at + chunk])
                list(dec)
        assert isinstance(info.value.error, errdefs.ResourceExhausted)
        assert info.value.msgid == msgid
    # what is within the bounds decodes, message after message (the count restarts)
    dec = Decoder(max_values=MAX_VALUES)
    for _ in range(5):
        for at in range(0, len(fine), chunk):
            dec.feed(fine[at : at + chunk])
        assert len(list(dec)) == 1
    # a client's decoder has no such bounds (a response may list 100 000 blobs)
    dec = Decoder()
    dec.feed(msgpack.packb([1, 1, None, [0] * (MAX_CONTAINER_ITEMS * 2)]))
    assert len(list(dec)) == 1
