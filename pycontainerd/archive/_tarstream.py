"""A streaming tar reader that digests every byte it reads (the layer's DiffID).

Python's ``tarfile`` in stream mode re-slices a growing buffer for every 512-byte
header and copies data in 16 KiB pieces; unpacking a layer wants 1 MiB reads, data
written straight from the read buffer, and the SHA-256 of the *whole* uncompressed
stream (headers, padding, the end-of-archive blocks and anything after them, as
containerd drains the rest of the stream into its digester). So we parse headers
ourselves: ustar and GNU headers, PAX extended headers (``x``; global ``g`` headers
are skipped as containerd ignores them), GNU long names (``L``/``K``). Sparse
members are refused rather than expanded to their declared size.

Decompression and hashing run on a read-ahead thread (both release the GIL), so a
gzip layer is inflated and digested while the caller writes files::

    source --read 1 MiB--> [read-ahead thread: inflate, sha256] --queue--> TarReader
                                                                              |
                                                     entries(), copy_to(fd) <-+
"""

from __future__ import annotations

import hashlib
import os
import queue
import struct
import threading

from pycontainerd.api import errdefs

from ._readable import Readable

CHUNK = 1 << 20
BLOCK = 512
#: Largest PAX / GNU long-name header we buffer (a tar bomb must not make us allocate).
MAX_META = 1 << 20
_ZERO_BLOCK = bytes(BLOCK)
_DATA_TYPES = frozenset((b"0", b"\x00", b"7"))
_HEADER_ONLY = frozenset((b"1", b"2", b"3", b"4", b"5", b"6"))
_SCHILY_XATTR = "SCHILY.xattr."
_HIGH_BYTES = bytes(range(128, 256))
#: name mode uid gid size mtime chksum type linkname magic version uname gname
#: devmajor devminor prefix (ustar; GNU keeps atime/ctime where ustar has prefix)
_USTAR = struct.Struct("100s8s8s8s12s12s8s1s100s6s2s32s32s8s8s155s12x")


class TarEntry:
    """One tar member after its PAX / GNU extensions are merged in."""

    __slots__ = (
        "atime_ns",
        "devmajor",
        "devminor",
        "gid",
        "linkname",
        "mode",
        "mtime_ns",
        "name",
        "size",
        "type",
        "uid",
        "xattrs",
    )

    def __init__(self) -> None:
        self.name = ""
        self.type = b"0"
        self.mode = 0
        self.uid = 0
        self.gid = 0
        self.size = 0
        self.mtime_ns = 0
        self.atime_ns: int | None = None
        self.linkname = ""
        self.devmajor = 0
        self.devminor = 0
        self.xattrs: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return f"<TarEntry {self.name!r} type={self.type!r} size={self.size}>"


def _read_error(exc: OSError) -> errdefs.ErrdefsError:
    return errdefs.Unknown(f"reading the layer stream failed: {exc}")


class _Inline:
    """Reads and digests ``source`` on the caller's thread.

    For decoders that hold the GIL (ISA-L's inflate): on a second thread they
    would make every syscall of the writer wait out the interpreter's switch
    interval, which costs more than the overlap gains."""

    def __init__(self, source: Readable) -> None:
        self._source = source
        self.digest = hashlib.sha256()
        self.size = 0

    def next_chunk(self) -> bytes:
        try:
            chunk = self._source.read(CHUNK)
        except OSError as exc:
            raise _read_error(exc) from exc
        if chunk:
            self.digest.update(chunk)
            self.size += len(chunk)
        return chunk

    def close(self) -> None:
        return


class _ReadAhead:
    """Reads ``source`` on a thread, digesting each chunk before queueing it."""

    def __init__(self, source: Readable) -> None:
        self._source = source
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=4)
        self._stop = threading.Event()
        self.digest = hashlib.sha256()
        self.size = 0
        self._eof = False
        self._thread = threading.Thread(target=self._run, name="layer-read-ahead", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        item: bytes | BaseException
        while not self._stop.is_set():
            try:
                item = self._source.read(CHUNK)
                if item:
                    self.digest.update(item)
                    self.size += len(item)
            except BaseException as exc:  # handed to the consumer, re-raised there
                item = exc
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if not isinstance(item, bytes) or not item:
                return

    def next_chunk(self) -> bytes:
        """The next chunk, ``b""`` at end of stream; re-raises the reader's error."""
        if self._eof:
            return b""
        item = self._queue.get()
        if isinstance(item, BaseException):
            self._eof = True
            if isinstance(item, OSError):
                raise _read_error(item) from item
            raise item
        if not item:
            self._eof = True
        return item

    def close(self) -> None:
        self._stop.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join()


def _decode(raw: bytes) -> str:
    """Tar names are bytes; on Linux they map to ``str`` as ``os.fsdecode`` does."""
    return raw.decode("utf-8", "surrogateescape")


def _number(field: bytes, what: str, name: str) -> int:
    """A numeric header field: octal text, or GNU base-256 when the top bit is set."""
    if field[0] & 0x80:
        value = int.from_bytes(field[1:], "big")
        if field[0] == 0xFF:
            value -= 1 << (8 * (len(field) - 1))
        return value
    try:
        return int(field.split(b"\x00", 1)[0].strip() or b"0", 8)
    except ValueError:
        raise errdefs.DataLoss(f"tar entry {name!r}: invalid {what} field") from None


def _checksum_ok(block: bytes, stored: int) -> bool:
    """The header sum with the checksum field counted as spaces: unsigned, or the
    signed sum some historic tars wrote."""
    unsigned = sum(block) - sum(block[148:156]) + 256
    if stored == unsigned:
        return True
    high = block[:148] + block[156:]
    return stored == unsigned - 256 * (len(high) - len(high.translate(None, _HIGH_BYTES)))


def _pax_time(value: bytes, name: str) -> int:
    text = value.decode("ascii", "replace")
    sign = -1 if text.startswith("-") else 1
    whole, _, frac = text.lstrip("-").partition(".")
    if not whole.isdigit() or (frac and not frac.isdigit()):
        raise errdefs.DataLoss(f"tar entry {name!r}: invalid PAX time {text!r}")
    return sign * (int(whole) * 1_000_000_000 + int((frac + "000000000")[:9]))


def parse_pax(data: bytes) -> dict[str, bytes]:
    """Parse PAX records (``"<len> <key>=<value>\\n"``) into keys and raw values.

    Raises:
        errdefs.DataLoss: a malformed record.
    """
    records: dict[str, bytes] = {}
    pos = 0
    while pos < len(data):
        if data[pos] == 0:  # NUL padding after the last record
            break
        space = data.find(b" ", pos)
        length_text = data[pos:space]
        if space < 0 or not length_text.isdigit():
            raise errdefs.DataLoss("malformed PAX record length")
        end = pos + int(length_text)
        if end <= space or end > len(data) or data[end - 1] != 0x0A:
            raise errdefs.DataLoss("malformed PAX record")
        key, eq, value = data[space + 1 : end - 1].partition(b"=")
        if not eq:
            raise errdefs.DataLoss("malformed PAX record: no '='")
        records[key.decode("utf-8", "surrogateescape")] = value
        pos = end
    return records


class TarReader:
    """Iterate the members of an uncompressed tar stream, digesting all of it.

    Use :meth:`entries`; for a member with data call :meth:`copy_to` (unread data
    is skipped when the iteration moves on). After the iteration, :meth:`finish`
    drains the stream and returns the DiffID. :meth:`close` stops the read-ahead
    thread; it is safe to call twice and does not close ``source``.
    """

    def __init__(self, source: Readable) -> None:
        self._ahead: _ReadAhead | _Inline
        if getattr(source, "releases_gil", True):
            self._ahead = _ReadAhead(source)
        else:
            self._ahead = _Inline(source)
        self._buf = b""
        self._pos = 0
        self._remaining = 0  # data bytes of the current member not yet consumed
        self._padding = 0
        self._current = ""

    def _fill(self) -> bool:
        chunk = self._ahead.next_chunk()
        if not chunk:
            return False
        if self._pos < len(self._buf):
            self._buf = self._buf[self._pos :] + chunk
        else:
            self._buf = chunk
        self._pos = 0
        return True

    def _read_exact(self, n: int, what: str) -> bytes:
        while len(self._buf) - self._pos < n:
            if not self._fill():
                raise errdefs.DataLoss(f"tar stream truncated in {what}")
        data = self._buf[self._pos : self._pos + n]
        self._pos += n
        return data

    def _skip(self, n: int, what: str) -> None:
        while n:
            avail = len(self._buf) - self._pos
            if not avail:
                if not self._fill():
                    raise errdefs.DataLoss(f"tar stream truncated in {what}")
                continue
            step = min(avail, n)
            self._pos += step
            n -= step

    def copy_to(self, fd: int) -> None:
        """Write the current member's data to ``fd`` straight from the read buffer.

        Raises:
            errdefs.DataLoss: the stream ends before the member's declared size.
        """
        n = self._remaining
        while n:
            avail = len(self._buf) - self._pos
            if not avail:
                if not self._fill():
                    raise errdefs.DataLoss(
                        f"tar stream truncated in {self._current!r}: {n} bytes of data missing"
                    )
                continue
            step = min(avail, n)
            view = memoryview(self._buf)[self._pos : self._pos + step]
            while view:
                view = view[os.write(fd, view) :]
            self._pos += step
            n -= step
            self._remaining = n

    def _finish_member(self) -> None:
        if self._remaining or self._padding:
            self._skip(self._remaining + self._padding, repr(self._current))
            self._remaining = self._padding = 0

    def _header(self) -> bytes | None:
        while len(self._buf) - self._pos < BLOCK:
            if not self._fill():
                if len(self._buf) == self._pos:
                    return None  # clean end without end-of-archive blocks, as Go's reader
                raise errdefs.DataLoss("tar stream truncated in a header")
        block = self._buf[self._pos : self._pos + BLOCK]
        self._pos += BLOCK
        return block

    def _meta(self, size: int, what: str) -> bytes:
        if size > MAX_META:
            raise errdefs.InvalidArgument(f"tar {what} header of {size} bytes exceeds {MAX_META}")
        data = self._read_exact(size, f"a {what} header")
        self._skip(-size % BLOCK, f"a {what} header")
        return data

    def next_entry(self) -> TarEntry | None:
        """Read the next member's header; ``None`` at the end of the archive.

        Raises:
            errdefs.DataLoss: a truncated stream or a header with a bad checksum.
            errdefs.InvalidArgument: an oversized extension header.
            errdefs.NotImplemented_: a sparse member.
        """
        self._finish_member()
        pax: dict[str, bytes] = {}
        longname: bytes | None = None
        longlink: bytes | None = None
        while True:
            block = self._header()
            if block is None or block == _ZERO_BLOCK:
                return None
            raw_name = block[0:100].split(b"\x00", 1)[0]
            try:  # plain octal, the common case
                stored = int(block[148:156].strip(b"\x00 "), 8)
                size = int(block[124:136].strip(b"\x00 "), 8)
            except ValueError:
                stored = _number(block[148:156], "checksum", _decode(raw_name))
                size = _number(block[124:136], "size", _decode(raw_name))
            if not _checksum_ok(block, stored):
                raise errdefs.DataLoss("invalid tar header: checksum mismatch")
            kind = block[156:157]
            if size < 0:
                raise errdefs.DataLoss(f"tar entry {_decode(raw_name)!r}: negative size")
            if kind == b"x":
                pax.update(parse_pax(self._meta(size, "PAX")))
            elif kind == b"g":
                self._meta(size, "PAX global")
            elif kind == b"L":
                longname = self._meta(size, "GNU long name").split(b"\x00", 1)[0]
            elif kind == b"K":
                longlink = self._meta(size, "GNU long link").split(b"\x00", 1)[0]
            else:
                break
        entry = TarEntry()
        (_, mode, uid, gid, _, mtime, _, _, raw_link, magic, _, _, _, major, minor, prefix) = (
            _USTAR.unpack(block)
        )
        if magic == b"ustar\x00" and prefix[0] != 0:
            raw_name = prefix.split(b"\x00", 1)[0] + b"/" + raw_name
        name = entry.name = _decode(longname if longname is not None else raw_name)
        if kind == b"S" or (pax and any(key.startswith("GNU.sparse.") for key in pax)):
            raise errdefs.NotImplemented_(f"tar entry {name!r}: sparse files are not supported")
        entry.type = kind
        try:  # plain octal, the common case, without a call per field
            entry.mode = int(mode.strip(b"\x00 "), 8)
            entry.uid = int(uid.strip(b"\x00 "), 8)
            entry.gid = int(gid.strip(b"\x00 "), 8)
            entry.mtime_ns = int(mtime.strip(b"\x00 "), 8) * 1_000_000_000
        except ValueError:  # empty, base-256 or junk after a NUL
            entry.mode = _number(mode, "mode", name)
            entry.uid = _number(uid, "uid", name)
            entry.gid = _number(gid, "gid", name)
            entry.mtime_ns = _number(mtime, "mtime", name) * 1_000_000_000
        if longlink is not None:
            entry.linkname = _decode(longlink)
        elif raw_link[0] != 0:
            entry.linkname = _decode(raw_link.split(b"\x00", 1)[0])
        if kind in (b"3", b"4"):
            entry.devmajor = _number(major, "devmajor", name)
            entry.devminor = _number(minor, "devminor", name)
        if pax:
            size = self._apply_pax(entry, pax, size)
        entry.size = size
        self._current = entry.name
        self._remaining = 0 if kind in _HEADER_ONLY else size
        self._padding = -self._remaining % BLOCK
        return entry

    @staticmethod
    def _apply_pax(entry: TarEntry, pax: dict[str, bytes], size: int) -> int:
        for key, value in pax.items():
            if key.startswith(_SCHILY_XATTR):
                entry.xattrs[key[len(_SCHILY_XATTR) :]] = value
            elif key == "path":
                entry.name = _decode(value)
            elif key == "linkpath":
                entry.linkname = _decode(value)
            elif key in ("size", "uid", "gid"):
                if not value.isdigit():
                    raise errdefs.DataLoss(f"tar entry {entry.name!r}: invalid PAX {key}")
                if key == "size":
                    size = int(value)
                else:
                    setattr(entry, key, int(value))
            elif key == "mtime":
                entry.mtime_ns = _pax_time(value, entry.name)
            elif key == "atime":
                entry.atime_ns = _pax_time(value, entry.name)
        return size

    def finish(self) -> tuple[str, int]:
        """Drain the stream to its end; return ``("sha256:<hex>", size)`` of all of it.

        Raises:
            errdefs.DataLoss: the current member's data is truncated.
        """
        self._finish_member()
        while self._ahead.next_chunk():
            pass
        return "sha256:" + self._ahead.digest.hexdigest(), self._ahead.size

    def close(self) -> None:
        self._ahead.close()

    def __enter__(self) -> TarReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
