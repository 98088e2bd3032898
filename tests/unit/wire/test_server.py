"""The Trio server and both clients, in process, over a real Unix socket."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import msgpack
import pytest
import trio

from pycontainerd.api import errdefs
from pycontainerd.api.rpc import Call, Method, Wait, done
from pycontainerd.wire import Client, open_unix_listener, serve_rpc
from pycontainerd.wire._async_client import AsyncClient


@attrs.frozen(kw_only=True)
class EchoRequest:
    text: str = ""
    delay: float = 0.0
    count: int = 0


@attrs.frozen(kw_only=True)
class EchoResponse:
    text: str = ""
    namespace: str = ""


@attrs.frozen(kw_only=True)
class Item:
    n: int = 0


async def echo(call: Call) -> Wait:
    req: EchoRequest = call.request
    if req.text == "refuse":
        raise errdefs.FailedPrecondition("refused in phase one")

    async def wait() -> EchoResponse:
        await trio.sleep(req.delay)
        if req.text == "crash":
            raise RuntimeError("secret detail")
        if req.text == "missing":
            raise errdefs.NotFound("no such thing")
        return EchoResponse(text=req.text, namespace=call.namespace)

    return wait


async def count(call: Call) -> Wait:
    req: EchoRequest = call.request

    async def wait() -> EchoResponse:
        assert call.stream is not None
        for n in range(req.count):
            await call.stream.send(Item(n=n))
        if req.delay:
            await trio.sleep(req.delay)
        return EchoResponse(text="end")

    return wait


async def plain(call: Call) -> Wait:
    return done(EchoResponse(text="plain"))


ROUTER = {
    "test.echo": (Method(name="test.echo", request=EchoRequest, response=EchoResponse), echo),
    "test.count": (
        Method(
            name="test.count",
            request=EchoRequest,
            response=EchoResponse,
            namespaced=False,
            stream=Item,
        ),
        count,
    ),
    "test.plain": (
        Method(name="test.plain", request=EchoRequest, response=EchoResponse, namespaced=False),
        plain,
    ),
}


@pytest.fixture
async def address(tmp_path: Path) -> AsyncIterator[str]:
    path = str(tmp_path / "s.sock")
    listener = await open_unix_listener(path, mode=0o660, gid=os.getgid())
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_rpc, [listener], ROUTER)
        yield path
        nursery.cancel_scope.cancel()


async def _sync(fn: Any, *args: Any) -> Any:
    return await trio.to_thread.run_sync(fn, *args)


async def test_socket_mode_and_group(address: str) -> None:
    st = os.stat(address)
    assert stat.S_IMODE(st.st_mode) == 0o660
    assert st.st_gid == os.getgid()


async def test_sync_client_calls_and_errors(address: str) -> None:
    def run() -> None:
        with Client(address, namespace="ns1") as c:
            assert c.call("test.echo", {"text": "hi"}) == {"text": "hi", "namespace": "ns1"}
            with pytest.raises(errdefs.NotFound, match="no such thing"):
                c.call("test.echo", {"text": "missing"})
            with pytest.raises(errdefs.FailedPrecondition, match="phase one"):
                c.call("test.echo", {"text": "refuse"})
            with pytest.raises(errdefs.Internal) as info:
                c.call("test.echo", {"text": "crash"})
            assert "secret" not in str(info.value)
            with pytest.raises(errdefs.NotImplemented_, match=r"test\.nope"):
                c.call("test.nope", {})
            with pytest.raises(errdefs.FailedPrecondition, match="namespace is required"):
                c.call("test.echo", {"text": "x"}, namespace=None)
            with pytest.raises(errdefs.InvalidArgument, match="identifier"):
                c.call("test.echo", {"text": "x"}, namespace="../etc")
            with pytest.raises(errdefs.InvalidArgument, match="text: expected str, got int"):
                c.call("test.echo", {"text": 5})
            assert c.call("test.plain", {}, namespace=None) == {"text": "plain", "namespace": ""}

    await _sync(run)


async def test_responses_come_out_of_order(address: str) -> None:
    def run() -> list[int]:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(address)
            meta = {"namespace": "n"}
            s.sendall(
                msgpack.packb([0, 1, "test.echo", [{"text": "slow", "delay": 0.3}, meta]])
                + msgpack.packb([0, 2, "test.echo", [{"text": "fast"}, meta]])
            )
            unpacker = msgpack.Unpacker()
            order: list[int] = []
            while len(order) < 2:
                unpacker.feed(s.recv(4096))
                order.extend(m[1] for m in unpacker)
            return order

    assert await _sync(run) == [2, 1]


async def test_timeout_is_deadline_exceeded(address: str) -> None:
    def run() -> None:
        with Client(address, namespace="n") as c:
            with pytest.raises(errdefs.DeadlineExceeded, match="timeout"):
                c.call("test.echo", {"text": "x", "delay": 5}, timeout=0.1)
            assert c.call("test.echo", {"text": "after"})["text"] == "after"

    await _sync(run)


async def test_stream_items_then_response_and_cancel(address: str) -> None:
    def run() -> None:
        with Client(address, namespace=None) as c:
            s = c.stream("test.count", {"count": 5})
            assert [i["n"] for i in s] == [0, 1, 2, 3, 4]
            assert s.result == {"text": "end", "namespace": ""}
            s = c.stream("test.count", {"count": 2, "delay": 30})
            it = iter(s)
            assert next(it) == {"n": 0}
            assert next(it) == {"n": 1}
            s.cancel()
            with pytest.raises(errdefs.Canceled):
                next(it)

    await _sync(run)


async def test_threads_share_one_client(address: str) -> None:
    def run() -> None:
        import concurrent.futures

        with Client(address, namespace="n") as c:
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                texts = [f"t{i}" for i in range(200)]
                results = list(pool.map(lambda t: c.call("test.echo", {"text": t})["text"], texts))
            assert results == texts

    await _sync(run)


async def test_async_client(address: str) -> None:
    async with await AsyncClient.connect(address, namespace="a") as c:
        assert (await c.call("test.echo", {"text": "x"}))["namespace"] == "a"
        with pytest.raises(errdefs.NotFound):
            await c.call("test.echo", {"text": "missing"})
        stream = await c.stream("test.count", {"count": 3}, namespace=None)
        assert [i["n"] async for i in stream] == [0, 1, 2]
        with trio.move_on_after(0.1):
            await c.call("test.echo", {"text": "x", "delay": 10})
        assert (await c.call("test.echo", {"text": "y"}))["text"] == "y"


async def test_connection_closed_mid_call_is_harmless(address: str) -> None:
    def run() -> None:
        for _ in range(20):
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(address)
                s.sendall(msgpack.packb([0, 1, "test.echo", [{"delay": 1}, {"namespace": "n"}]]))
        with Client(address, namespace="n") as c:
            assert c.call("test.echo", {"text": "ok"})["text"] == "ok"

    await _sync(run)


async def test_duplicate_msgid_in_flight_is_refused(address: str) -> None:
    def run() -> Any:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(address)
            frame = msgpack.packb([0, 1, "test.echo", [{"delay": 0.2}, {"namespace": "n"}]])
            s.sendall(frame + frame)
            unpacker = msgpack.Unpacker()
            got: list[Any] = []
            while len(got) < 2:
                unpacker.feed(s.recv(4096))
                got.extend(unpacker)
            return got

    first, second = await _sync(run)
    assert first[2]["code"] == "InvalidArgument" and "in flight" in first[2]["message"]
    assert second[2] is None
