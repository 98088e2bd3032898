"""The verify wrapper: a lying stream is caught (no network)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncGenerator
from contextlib import aclosing

import pytest

from pycontainerd import images
from pycontainerd.api import errdefs
from pycontainerd.remotes import read_all, verify

DATA = b"0123456789" * 10


def desc_of(data: bytes, size: int | None = None) -> images.Descriptor:
    return images.Descriptor(
        media_type=images.MEDIA_TYPE_OCI_LAYER_GZIP,
        digest="sha256:" + hashlib.sha256(data).hexdigest(),
        size=len(data) if size is None else size,
    )


async def chunks(data: bytes, step: int = 7) -> AsyncGenerator[bytes, None]:
    for i in range(0, len(data), step):
        yield data[i : i + step]


async def test_verify_passes_good_bytes() -> None:
    async with verify(chunks(DATA), desc_of(DATA)) as stream:
        assert await read_all(stream, 1 << 20) == DATA
        assert stream.offset == len(DATA)


async def test_verify_wrong_digest() -> None:
    lie = DATA[:-1] + b"X"
    with pytest.raises(errdefs.FailedPrecondition, match="unexpected digest"):
        await read_all(verify(chunks(lie), desc_of(DATA)), 1 << 20)


async def test_verify_truncated() -> None:
    with pytest.raises(errdefs.DataLoss, match="truncated: got 50 of 100"):
        await read_all(verify(chunks(DATA[:50]), desc_of(DATA)), 1 << 20)


async def test_verify_too_long_stops_before_handing_out_excess() -> None:
    handed: list[bytes] = []
    with pytest.raises(errdefs.DataLoss, match="more than the expected 100"):
        async with verify(chunks(DATA + b"extra"), desc_of(DATA)) as stream:
            async for chunk in stream:
                handed.append(chunk)
    assert sum(len(c) for c in handed) <= len(DATA)


async def test_verify_resumed_needs_prefix_hash() -> None:
    with pytest.raises(errdefs.InvalidArgument):
        verify(chunks(DATA[40:]), desc_of(DATA), offset=40)
    prefix = hashlib.sha256(DATA[:40])
    stream = verify(chunks(DATA[40:]), desc_of(DATA), offset=40, hasher=prefix)
    assert await read_all(stream, 1 << 20) == DATA[40:]


async def test_read_all_limit() -> None:
    with pytest.raises(errdefs.ResourceExhausted):
        async with aclosing(chunks(DATA)) as source:
            await read_all(source, 99)
