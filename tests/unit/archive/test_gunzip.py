"""gzip inflated in a child process (``_gunzip.GunzipProcess``)."""

from __future__ import annotations

import gzip
import io
import os

import pytest

from pycontainerd.api import errdefs
from pycontainerd.archive import compress_stream, decompress_stream

PAYLOAD = os.urandom(300_000) + bytes(700_000) + b"tail"


def compressed(data: bytes) -> bytes:
    out = io.BytesIO()
    with compress_stream(out, "gzip") as writer:
        writer.write(data)
    return out.getvalue()


def read_all_process(blob: bytes) -> bytes:
    parts = []
    with decompress_stream(io.BytesIO(blob), use_process=True) as stream:
        assert stream.releases_gil
        while chunk := stream.read(1 << 20):
            parts.append(chunk)
    return b"".join(parts)


def test_gzip_in_a_child_process() -> None:
    assert read_all_process(compressed(PAYLOAD)) == PAYLOAD
    assert read_all_process(gzip.compress(b"a") + gzip.compress(b"b")) == b"ab"


def test_child_process_reports_corruption_and_truncation() -> None:
    blob = gzip.compress(PAYLOAD)
    with pytest.raises(errdefs.DataLoss, match="corrupt gzip"):
        read_all_process(blob[: len(blob) // 2])
    damaged = bytearray(blob)
    damaged[-8] ^= 0xFF
    with pytest.raises(errdefs.DataLoss, match="corrupt gzip"):
        read_all_process(bytes(damaged))


def test_child_process_closed_early_stops() -> None:
    with decompress_stream(io.BytesIO(compressed(PAYLOAD * 8)), use_process=True) as s:
        first = s.read(1000)
    assert 0 < len(first) <= 1000
    assert first == PAYLOAD[: len(first)]
    assert s.read(10) == b""  # closed mid-stream: the child was stopped, nothing hangs
