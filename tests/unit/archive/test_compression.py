from __future__ import annotations

import gzip
import io
import os
import zlib
from pathlib import Path

import pytest
import zstandard

from pycontainerd.api import errdefs
from pycontainerd.archive import (
    MEDIA_TYPES,
    Compression,
    SequentialReader,
    compress_stream,
    decompress_stream,
    detect,
    media_type_compression,
)
from pycontainerd.content import FileReaderAt

PAYLOAD = os.urandom(300_000) + bytes(700_000) + b"tail"


def compressed(data: bytes, kind: Compression) -> bytes:
    out = io.BytesIO()
    with compress_stream(out, kind) as writer:
        for i in range(0, len(data), 65_536):
            writer.write(data[i : i + 65_536])
    return out.getvalue()


def read_all(blob: bytes, size: int = 1 << 20) -> bytes:
    parts = []
    with decompress_stream(io.BytesIO(blob)) as stream:
        while chunk := stream.read(size):
            parts.append(chunk)
    return b"".join(parts)


def test_detect_by_magic() -> None:
    assert detect(b"\x1f\x8b\x08\x00") == "gzip"
    assert detect(b"\x28\xb5\x2f\xfd") == "zstd"
    assert detect(b"\x50\x2a\x4d\x18") == "zstd"  # skippable frame 0x184D2A50
    assert detect(b"\x5f\x2a\x4d\x18") == "zstd"  # skippable frame 0x184D2A5F
    assert detect(b"\x60\x2a\x4d\x18") == "uncompressed"
    assert detect(b"\x1f\x8b\x07\x00") == "uncompressed"  # gzip but not deflate
    assert detect(b"etc/") == "uncompressed"
    assert detect(b"") == "uncompressed"


@pytest.mark.parametrize("kind", ["gzip", "zstd", "uncompressed"])
def test_round_trip(kind: Compression) -> None:
    blob = compressed(PAYLOAD, kind)
    assert detect(blob[:4]) == kind
    if kind != "uncompressed":
        assert len(blob) < len(PAYLOAD)
    assert read_all(blob) == PAYLOAD
    assert read_all(blob, size=7) == PAYLOAD


def test_stdlib_gzip_and_zstd_are_read() -> None:
    assert read_all(gzip.compress(PAYLOAD, mtime=0)) == PAYLOAD
    two_members = gzip.compress(b"first ") + gzip.compress(b"second")
    assert read_all(two_members) == b"first second"
    assert read_all(zstandard.ZstdCompressor().compress(PAYLOAD)) == PAYLOAD


def test_zstd_behind_a_skippable_frame() -> None:
    skippable = b"\x50\x2a\x4d\x18" + (4).to_bytes(4, "little") + b"meta"
    blob = skippable + zstandard.ZstdCompressor().compress(b"layer")
    assert detect(blob) == "zstd"
    assert read_all(blob) == b"layer"


def test_gzip_output_is_deterministic() -> None:
    assert compressed(PAYLOAD, "gzip") == compressed(PAYLOAD, "gzip")
    assert compressed(PAYLOAD, "gzip")[4:8] == b"\x00\x00\x00\x00"  # header mtime 0


def test_corrupt_gzip_is_data_loss() -> None:
    blob = bytearray(gzip.compress(PAYLOAD))
    blob[len(blob) // 2 : len(blob) // 2 + 64] = bytes(64)
    with pytest.raises(errdefs.DataLoss, match="corrupt gzip") as info:
        read_all(bytes(blob))
    assert not isinstance(info.value, zlib.error)


def test_gzip_crc_mismatch_is_data_loss() -> None:
    blob = bytearray(gzip.compress(b"x" * 1000))
    blob[-8] ^= 0xFF  # the CRC32 trailer
    with pytest.raises(errdefs.DataLoss):
        read_all(bytes(blob))


def test_truncated_gzip_is_data_loss() -> None:
    blob = gzip.compress(PAYLOAD)
    with pytest.raises(errdefs.DataLoss, match="gzip"):
        read_all(blob[: len(blob) // 2])


def test_corrupt_zstd_is_data_loss() -> None:
    blob = bytearray(zstandard.ZstdCompressor().compress(bytes(range(256)) * 4000))
    blob[4:12] = b"\xff" * 8  # frame header
    with pytest.raises(errdefs.DataLoss, match="corrupt zstd"):
        read_all(bytes(blob))


def test_media_type_compression() -> None:
    assert media_type_compression(MEDIA_TYPES["gzip"]) == "gzip"
    assert media_type_compression(MEDIA_TYPES["zstd"]) == "zstd"
    assert media_type_compression(MEDIA_TYPES["uncompressed"]) == "uncompressed"
    docker = "application/vnd.docker.image.rootfs.diff.tar"
    assert media_type_compression(docker) is None
    assert media_type_compression(docker + ".gzip") == "gzip"
    with pytest.raises(errdefs.NotImplemented_):
        media_type_compression("application/vnd.oci.image.config.v1+json")
    with pytest.raises(errdefs.NotImplemented_):
        media_type_compression(MEDIA_TYPES["uncompressed"] + "+bzip2")


def test_unknown_compression_is_refused() -> None:
    with pytest.raises(errdefs.InvalidArgument), compress_stream(io.BytesIO(), "lz4"):  # type: ignore[arg-type]
        pass


def test_truncated_zstd_is_data_loss() -> None:
    blob = compressed(PAYLOAD, "zstd")
    with pytest.raises(errdefs.DataLoss, match="zstd"):
        read_all(blob[: len(blob) // 2])
    with pytest.raises(errdefs.DataLoss, match="zstd"):
        read_all(blob[:-1])


def test_our_zstd_frames_carry_a_checksum() -> None:
    blob = bytearray(compressed(os.urandom(4096), "zstd"))
    blob[-10] ^= 0xFF  # raw data: only the frame checksum can notice
    with pytest.raises(errdefs.DataLoss, match="corrupt zstd"):
        read_all(bytes(blob))


def test_sequential_reader_over_a_content_reader_at(tmp_path: Path) -> None:
    blob = tmp_path / "blob"
    blob.write_bytes(compressed(PAYLOAD, "gzip"))
    with FileReaderAt(blob) as ra:
        with decompress_stream(SequentialReader(ra)) as stream:
            assert stream.compression == "gzip"
            assert stream.read(10) == PAYLOAD[:10]
        assert SequentialReader(ra).read() == blob.read_bytes()


def test_repr_names_compression_and_state() -> None:
    stream = decompress_stream(io.BytesIO(compressed(b"x", "gzip")))
    assert repr(stream) == "<DecompressedStream gzip thread open>"
    stream.close()
    assert repr(stream) == "<DecompressedStream gzip thread closed>"
    assert repr(decompress_stream(io.BytesIO(b"tar"))) == (
        "<DecompressedStream uncompressed thread open>"
    )
    zstd = decompress_stream(io.BytesIO(compressed(b"x", "zstd")))
    with zstd:
        assert repr(zstd) == "<DecompressedStream zstd thread open>"
    assert repr(zstd) == "<DecompressedStream zstd thread closed>"
