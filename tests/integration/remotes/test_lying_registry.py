"""A registry that lies, throttles or fails: nothing wrong may be accepted."""

from __future__ import annotations

import hashlib
import http.server
import os
from collections.abc import Iterator

import attrs
import pytest
import trio

from pycontainerd import images
from pycontainerd.api import errdefs
from pycontainerd.remotes import Resolver, read_all, verify

from .registry import FakeServer, reply

GOOD = os.urandom(5000)
GOOD_DIGEST = "sha256:" + hashlib.sha256(GOOD).hexdigest()
DESC = images.Descriptor(media_type=images.MEDIA_TYPE_OCI_LAYER, digest=GOOD_DIGEST, size=5000)


class Liar:
    """Serves ``/v2/lies/blobs/<digest>`` according to ``mode``."""

    def __init__(self) -> None:
        self.mode = "honest"
        self.throttled = 0

    def __call__(self, request: http.server.BaseHTTPRequestHandler, method: str, path: str) -> None:
        if path == "/external/blob":
            reply(request, 200, GOOD, {"Content-Type": "application/octet-stream"})
            return
        if not path.startswith("/v2/lies/"):
            reply(request, 404)
            return
        octets = {"Content-Type": "application/octet-stream"}
        if self.mode == "wrong-bytes":
            reply(request, 200, GOOD[:-1] + b"!", octets)
        elif self.mode == "too-long":
            reply(request, 200, GOOD + b"more", octets)
        elif self.mode == "short":
            reply(request, 200, GOOD[:1000], octets)
        elif self.mode == "cut":
            reply(request, 200, GOOD[:1000], octets, content_length=len(GOOD))
            request.close_connection = True
        elif self.mode == "ignores-range":
            reply(request, 200, GOOD, octets)
        elif self.mode == "throttle" and self.throttled < 2:
            self.throttled += 1
            reply(request, 429 if self.throttled == 1 else 503, b"", {"Retry-After": "0"})
        elif self.mode == "always-503":
            reply(request, 503, b"", {"Retry-After": "0"})
        elif self.mode == "bad-manifest-digest" and "/manifests/" in path:
            other = "sha256:" + "0" * 64
            headers = {
                "Content-Type": images.MEDIA_TYPE_OCI_MANIFEST,
                "Docker-Content-Digest": other,
            }
            reply(request, 200, b"{}", headers)
        else:
            reply(request, 200, GOOD, octets)


@pytest.fixture
def liar() -> Iterator[tuple[Liar, FakeServer]]:
    handler = Liar()
    server = FakeServer(handler)
    yield handler, server
    server.close()


async def _fetch_checked(resolver: Resolver, host: str, offset: int = 0) -> bytes:
    stream = await resolver.fetcher(f"{host}/lies").fetch(DESC, offset=offset)
    hasher = hashlib.sha256(GOOD[:offset])
    async with verify(stream, DESC, offset=offset, hasher=hasher) as checked:
        return await read_all(checked, 1 << 20)


async def test_honest_then_each_lie(liar: tuple[Liar, FakeServer]) -> None:
    handler, server = liar
    async with Resolver(plain_http=True) as resolver:
        assert await _fetch_checked(resolver, server.host) == GOOD

        handler.mode = "wrong-bytes"
        with pytest.raises(errdefs.FailedPrecondition, match="unexpected digest"):
            await _fetch_checked(resolver, server.host)

        handler.mode = "too-long"
        with pytest.raises(errdefs.DataLoss, match="more than the expected 5000"):
            await _fetch_checked(resolver, server.host)

        handler.mode = "short"
        with pytest.raises(errdefs.DataLoss, match="truncated: got 1000 of 5000"):
            await _fetch_checked(resolver, server.host)

        handler.mode = "cut"
        with pytest.raises(errdefs.Unavailable, match="reading body"):
            await _fetch_checked(resolver, server.host)

        # a server that ignores Range: the first bytes are skipped for the caller
        handler.mode = "ignores-range"
        assert await _fetch_checked(resolver, server.host, offset=1234) == GOOD[1234:]

        handler.mode = "bad-manifest-digest"
        with pytest.raises(errdefs.FailedPrecondition, match="Docker-Content-Digest"):
            await resolver.resolve(f"{server.host}/lies@{GOOD_DIGEST}")


async def test_retries_on_429_and_503(liar: tuple[Liar, FakeServer]) -> None:
    handler, server = liar
    handler.mode = "throttle"
    async with Resolver(plain_http=True) as resolver:
        assert await _fetch_checked(resolver, server.host) == GOOD
        assert handler.throttled == 2
        handler.mode = "always-503"
        before = len(server.requests)
        with pytest.raises(errdefs.Unavailable, match="503"):
            await resolver.fetcher(f"{server.host}/lies").fetch(DESC)
        assert len(server.requests) - before == 6  # one try and 5 retries


async def test_connection_refused_is_unavailable() -> None:
    from .registry import free_port

    async with Resolver(plain_http=True, backoff=0.001) as resolver:
        with pytest.raises(errdefs.Unavailable, match="Connect"):
            await resolver.resolve(f"127.0.0.1:{free_port()}/x:1")


async def test_descriptor_urls_are_tried_first(liar: tuple[Liar, FakeServer]) -> None:
    _, server = liar
    foreign = attrs.evolve(DESC, urls=(f"http://{server.host}/external/blob",))
    async with Resolver(plain_http=True) as resolver:
        # the repository has nothing (404); the URL serves the blob
        stream = await resolver.fetcher(f"{server.host}/nothing").fetch(foreign)
        async with verify(stream, foreign) as checked:
            assert await read_all(checked, 1 << 20) == GOOD
        with pytest.raises(errdefs.NotFound):
            await resolver.fetcher(f"{server.host}/nothing").fetch(DESC)
    assert [path for _, path, _ in server.requests][:1] == ["/external/blob"]


async def test_keep_alive_and_concurrency_limit(liar: tuple[Liar, FakeServer]) -> None:
    _, server = liar
    async with Resolver(plain_http=True, max_concurrency=2) as resolver:
        fetcher = resolver.fetcher(f"{server.host}/lies")
        for _ in range(5):
            stream = await fetcher.fetch(DESC)
            async with verify(stream, DESC) as checked:
                await read_all(checked, 1 << 20)
        assert len(server.peers) == 1  # one kept-alive connection for sequential fetches

        results: list[bytes] = []

        async def one() -> None:
            stream = await fetcher.fetch(DESC)
            async with verify(stream, DESC) as checked:
                results.append(await read_all(checked, 1 << 20))

        async with trio.open_nursery() as nursery:
            for _ in range(6):
                nursery.start_soon(one)
        assert results == [GOOD] * 6
        assert len(server.peers) <= 2  # never more connections than max_concurrency
