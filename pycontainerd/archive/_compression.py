"""Layer compression: magic detection, streaming decompression and compression.

containerd's ``archive/compression/compression.go``: a layer blob is detected by
its first bytes, never trusted from its media type alone (Docker's ``...diff.tar``
may be gzip). gzip runs through ISA-L (``isal``) when installed, several times
faster than zlib, and falls back to the stdlib; zstd runs through ``zstandard``.

A damaged compressed stream (bad magic inside, bad CRC, a stream that ends before
its end marker) surfaces as :class:`~pycontainerd.api.errdefs.DataLoss`: the
bytes we were given are not the bytes that were compressed. Raw ``zlib``,
``isal`` or ``zstd`` errors never leave this module.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO, Literal, Protocol, cast

import zstandard

from pycontainerd.api import errdefs

from ._gunzip import GunzipProcess
from ._readable import Readable

try:
    from isal import igzip as _igzip
    from isal import isal_zlib as _isal_zlib

    _GzipFile: type[gzip.GzipFile] = _igzip.IGzipFile
    _GZIP_ERRORS: tuple[type[BaseException], ...] = (
        zlib.error,
        cast(type[BaseException], _isal_zlib.error),
        gzip.BadGzipFile,
        EOFError,
    )
    _GZIP_LEVEL = 1  # ISA-L levels are 0..3; 1 is its speed/ratio sweet spot
    _HAVE_ISAL = True
except ImportError:  # pragma: no cover - isal is a declared dependency
    _HAVE_ISAL = False
    _GzipFile = gzip.GzipFile
    _GZIP_ERRORS = (zlib.error, gzip.BadGzipFile, EOFError)
    _GZIP_LEVEL = 6

Compression = Literal["uncompressed", "gzip", "zstd"]

#: Bytes :func:`detect` needs to decide; fewer only when the stream is shorter.
MAGIC_LEN = 4

MEDIA_TYPE_LAYER = "application/vnd.oci.image.layer.v1.tar"
MEDIA_TYPES: dict[Compression, str] = {
    "uncompressed": MEDIA_TYPE_LAYER,
    "gzip": MEDIA_TYPE_LAYER + "+gzip",
    "zstd": MEDIA_TYPE_LAYER + "+zstd",
}

_CHUNK = 1 << 20
_ZSTD_FEED = 32 << 10
_GZIP_MAGIC = b"\x1f\x8b\x08"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class RandomAccess(Protocol):
    """What :class:`SequentialReader` needs: the content store's ``ReaderAt``."""

    def read_at(self, offset: int, size: int) -> bytes: ...


class SequentialReader:
    """A content ``ReaderAt`` read from its start (containerd ``content.NewReader``).

    ``with store.reader_at(desc) as ra: decompress_stream(SequentialReader(ra))``;
    it never closes ``ra``.
    """

    def __init__(self, reader_at: RandomAccess) -> None:
        self._reader_at = reader_at
        self.offset = 0

    def read(self, size: int = -1, /) -> bytes:
        if size >= 0:
            data = self._reader_at.read_at(self.offset, size)
            self.offset += len(data)
            return data
        parts = []
        while chunk := self.read(_CHUNK):
            parts.append(chunk)
        return b"".join(parts)

    def readable(self) -> bool:
        return True


def detect(prefix: bytes) -> Compression:
    """Return the compression of a stream from its first bytes.

    gzip is ``1F 8B 08`` (deflate); zstd is the frame magic ``28 B5 2F FD`` or a
    skippable frame ``5? 2A 4D 18`` (little-endian ``0x184D2A5?``); anything else
    is taken as an uncompressed tar, as containerd does.
    """
    if prefix.startswith(_GZIP_MAGIC):
        return "gzip"
    if prefix.startswith(_ZSTD_MAGIC):
        return "zstd"
    if len(prefix) >= 4 and prefix[0] & 0xF0 == 0x50 and prefix[1:4] == b"\x2a\x4d\x18":
        return "zstd"
    return "uncompressed"


def media_type_compression(media_type: str) -> Compression | None:
    """containerd's ``DiffCompression``: the compression a layer media type names.

    Returns ``None`` for Docker's plain ``...diff.tar`` ("unknown": detect it).

    Raises:
        errdefs.NotImplemented_: the media type is not a layer type we unpack.
    """
    base, _, suffix = media_type.partition("+")
    if media_type.startswith("application/vnd.docker.image.rootfs."):
        return "gzip" if media_type.endswith(".gzip") else None
    if base in (MEDIA_TYPE_LAYER, "application/vnd.oci.image.layer.nondistributable.v1.tar"):
        if suffix == "":
            return "uncompressed"
        if suffix in ("gzip", "zstd"):
            return cast(Compression, suffix)
    raise errdefs.NotImplemented_(f"unsupported layer media type {media_type!r}")


class _Prefixed:
    """A reader that replays the bytes :func:`detect` consumed, then the rest."""

    def __init__(self, prefix: bytes, rest: Readable) -> None:
        self._prefix = prefix
        self._rest = rest

    def read(self, size: int = -1, /) -> bytes:
        if self._prefix:
            if size < 0 or size >= len(self._prefix):
                data, self._prefix = self._prefix, b""
                if size < 0:
                    return data + self._rest.read()
                return data
            data, self._prefix = self._prefix[:size], self._prefix[size:]
            return data
        return self._rest.read(size)

    def readinto(self, buffer: bytearray | memoryview, /) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True


class _ZstdReader:
    """zstd frames decoded one ``decompressobj`` per frame, so that a stream cut
    inside a frame is reported (``stream_reader`` ends silently there).

    Input is fed in 32 KiB slices to bound what one call can inflate to."""

    def __init__(self, source: Readable) -> None:
        self._source = source
        self._dctx = zstandard.ZstdDecompressor()
        self._frame = self._dctx.decompressobj()
        self._fed = False  # bytes given to the current frame's decoder
        self._input = b""
        self._in_pos = 0
        self._out = b""
        self._out_pos = 0
        self._eof = False

    def read(self, size: int = -1, /) -> bytes:
        while self._out_pos >= len(self._out):
            if self._eof:
                return b""
            if self._in_pos >= len(self._input):
                self._input, self._in_pos = self._source.read(_CHUNK), 0
                if not self._input:
                    if self._fed:
                        raise errdefs.DataLoss("corrupt zstd layer stream: truncated frame")
                    self._eof = True
                    return b""
            piece = self._input[self._in_pos : self._in_pos + _ZSTD_FEED]
            self._in_pos += len(piece)
            self._fed = True
            self._out, self._out_pos = self._frame.decompress(piece), 0
            while self._frame.eof:
                rest = self._frame.unused_data
                self._frame, self._fed = self._dctx.decompressobj(), False
                if not rest:
                    break
                self._fed = True
                self._out += self._frame.decompress(rest)
        start = self._out_pos
        if start == 0 and (size < 0 or size >= len(self._out)):
            self._out_pos = len(self._out)
            return self._out  # the whole block, no copy
        end = len(self._out) if size < 0 else min(start + size, len(self._out))
        self._out_pos = end
        return self._out[start:end]


class DecompressedStream:
    """The uncompressed bytes of a layer blob, read with :meth:`read`.

    Decoder failures become :class:`errdefs.DataLoss`. Closing it never closes
    the source stream: the caller owns that.
    """

    def __init__(
        self, compression: Compression, source: Readable, *, use_process: bool = False
    ) -> None:
        self.compression: Compression = compression
        #: Whether reads let other threads run (ISA-L inflate holds the GIL).
        self.releases_gil = True
        self._closed = False
        self._decoder: Readable
        self._closer: gzip.GzipFile | GunzipProcess | None = None
        if compression == "gzip" and _HAVE_ISAL:
            if use_process:
                child = GunzipProcess(source)
                self._decoder, self._closer = child, child
            else:
                gz = _GzipFile(fileobj=cast(BinaryIO, source), mode="rb")
                self._decoder, self._closer = gz, gz
                self.releases_gil = False
        elif compression == "gzip":
            gz = gzip.GzipFile(fileobj=cast(BinaryIO, source), mode="rb")
            self._decoder, self._closer = gz, gz
        elif compression == "zstd":
            self._decoder = _ZstdReader(source)
        else:
            self._decoder = source

    def __repr__(self) -> str:
        where = "process" if isinstance(self._decoder, GunzipProcess) else "thread"
        state = "closed" if self._closed else "open"
        return f"<DecompressedStream {self.compression} {where} {state}>"

    def read(self, size: int = -1, /) -> bytes:
        """Read up to ``size`` uncompressed bytes; ``b""`` at the end.

        Raises:
            errdefs.DataLoss: the compressed stream is corrupt or truncated.
        """
        try:
            return self._decoder.read(size)
        except _GZIP_ERRORS as exc:
            raise errdefs.DataLoss(f"corrupt gzip layer stream: {exc}") from exc
        except zstandard.ZstdError as exc:
            raise errdefs.DataLoss(f"corrupt zstd layer stream: {exc}") from exc

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._closed = True
        if self._closer is not None:
            self._closer.close()
            self._closer = None

    def __enter__(self) -> DecompressedStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _read_up_to(source: Readable, size: int) -> bytes:
    parts: list[bytes] = []
    got = 0
    while got < size:
        more = source.read(size - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def decompress_stream(source: Readable, *, use_process: bool = False) -> DecompressedStream:
    """Detect the compression of ``source`` by magic and return a decoding reader.

    Args:
        source: the layer blob, positioned at its start; it stays open and owned
            by the caller.
        use_process: inflate gzip in a child process: ISA-L holds the GIL, a
            process gets a core of its own. About 20% faster on an idle
            multi-core host for large layers, slower on a saturated one (the
            pipe costs CPU) and ~20 ms to start: the caller decides.

    Returns:
        A :class:`DecompressedStream`; uncompressed blobs pass through unchanged.
        Its reads raise :class:`errdefs.DataLoss` for a corrupt stream.
    """
    prefix = _read_up_to(source, MAGIC_LEN)
    return DecompressedStream(detect(prefix), _Prefixed(prefix, source), use_process=use_process)


class _NoClose:
    """Shields ``out`` from a compressor's ``close()``."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out

    def write(self, data: bytes, /) -> int:
        return self._out.write(data)

    def flush(self) -> None:
        self._out.flush()

    def close(self) -> None:
        self.flush()

    @property
    def closed(self) -> bool:
        return False


@contextmanager
def compress_stream(out: BinaryIO, compression: Compression) -> Iterator[BinaryIO]:
    """Open a writer that compresses into ``out``; leaving the block finishes it.

    gzip output carries mtime 0 and no file name, so equal input gives equal
    bytes (containerd's layers are reproducible the same way). ``out`` is
    flushed but not closed.

    Raises:
        errdefs.InvalidArgument: an unknown compression name.
    """
    target = cast(BinaryIO, _NoClose(out))
    if compression == "gzip":
        gz = _GzipFile(filename="", fileobj=target, mode="wb", compresslevel=_GZIP_LEVEL, mtime=0)
        with gz:
            yield cast(BinaryIO, gz)
    elif compression == "zstd":
        zw = zstandard.ZstdCompressor(level=3, write_checksum=True).stream_writer(
            target, write_size=_CHUNK, closefd=False
        )
        with zw:
            yield cast(BinaryIO, zw)
    elif compression == "uncompressed":
        yield target
    else:
        raise errdefs.InvalidArgument(f"unknown compression {compression!r}")
    out.flush()
