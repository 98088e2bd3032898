"""Write OCI layer tars from filesystem changes (containerd ``archive.WriteDiff``).

The walking differ (``diff/walking/differ.go``) feeds :mod:`._changes` into
containerd's ``ChangeWriter``; this module is that writer:

- a deletion becomes an empty regular file ``<dir>/.wh.<name>``; an opaque
  overlay directory is followed by ``<dir>/.wh..wh..opq``; whiteouts carry mtime
  ``source_date_epoch`` (or 0: containerd uses "now", which makes layers differ
  from run to run);
- every changed entry's parent directories are written first, once;
- headers are PAX: mode (incl. setuid/setgid/sticky), uid/gid, mtime truncated to
  the second (and clamped to ``source_date_epoch``), no user/group names, no
  atime/ctime; xattrs as ``SCHILY.xattr.*``; sockets are skipped;
- a file with several names is written once, the other names as tar hardlinks
  to it (names of unchanged files included, so the link survives).

Equal trees give equal bytes. :func:`compress` produces the blob in
``tar``/``tar+gzip``/``tar+zstd`` and reports its digest and size together with
the DiffID of the uncompressed tar.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO, cast

import attrs

from pycontainerd.api import errdefs

from ._apply import WHITEOUT_OPAQUE, WHITEOUT_PREFIX
from ._changes import Change, changes, overlay_upper_changes, read_xattrs
from ._compression import MEDIA_TYPES, Compression, compress_stream

_CHUNK = 1 << 20
_TYPES = {
    stat.S_IFREG: tarfile.REGTYPE,
    stat.S_IFDIR: tarfile.DIRTYPE,
    stat.S_IFLNK: tarfile.SYMTYPE,
    stat.S_IFCHR: tarfile.CHRTYPE,
    stat.S_IFBLK: tarfile.BLKTYPE,
    stat.S_IFIFO: tarfile.FIFOTYPE,
}


class _ChangeWriter:
    """containerd's ``ChangeWriter``: one tar entry (or none) per change."""

    def __init__(self, source: str, out: BinaryIO, source_date_epoch: int | None) -> None:
        self.source = source
        self.epoch = source_date_epoch
        self.tar = tarfile.TarFile(
            fileobj=out, mode="w", format=tarfile.PAX_FORMAT, copybufsize=_CHUNK
        )
        self.added_dirs: set[str] = set()
        self.inode_src: dict[tuple[int, int], str] = {}
        self.inode_refs: dict[tuple[int, int], list[str]] = {}

    def _mtime(self, seconds: int) -> int:
        if self.epoch is not None and seconds > self.epoch:
            return self.epoch
        return seconds

    def _include_parents(self, name: str) -> None:
        parent = os.path.dirname(name.rstrip("/"))
        if parent and parent not in self.added_dirs:
            self.added_dirs.add(parent)
            st = os.stat(os.path.join(self.source, parent))
            self.handle(Change("modify", "/" + parent, st))

    def _whiteout(self, name: str) -> None:
        info = tarfile.TarInfo(name)
        info.mode = 0
        info.mtime = self.epoch or 0
        info.uname = info.gname = ""
        self._include_parents(name)
        self.tar.addfile(info)

    def handle(self, change: Change) -> None:
        rel = change.path.lstrip("/")
        if change.kind == "delete":
            directory, base = os.path.split(rel)
            self._whiteout(os.path.join(directory, WHITEOUT_PREFIX + base))
            return
        st = change.stat
        assert st is not None, "a change that is not a deletion carries its stat"
        kind = _TYPES.get(stat.S_IFMT(st.st_mode))
        if kind is None:
            return  # sockets (and anything stranger) are not layer content
        source = os.path.join(self.source, rel)
        info = tarfile.TarInfo(rel)
        info.type = kind
        info.mode = stat.S_IMODE(st.st_mode)
        info.uid, info.gid = st.st_uid, st.st_gid
        info.uname = info.gname = ""
        info.mtime = self._mtime(st.st_mtime_ns // 1_000_000_000)
        if kind == tarfile.SYMTYPE:
            info.linkname = os.readlink(source)
        elif kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        elif kind == tarfile.REGTYPE:
            info.size = st.st_size
        additional: list[str] = []
        if kind != tarfile.DIRTYPE and st.st_nlink > 1:
            inode = (st.st_dev, st.st_ino)
            first = self.inode_src.get(inode)
            if first is not None:
                info.type, info.linkname, info.size = tarfile.LNKTYPE, first, 0
            elif change.kind == "unmodified":
                self.inode_refs.setdefault(inode, []).append(rel)
                return
            else:
                self.inode_src[inode] = rel
                additional = self.inode_refs.pop(inode, [])
        elif change.kind == "unmodified":
            return
        xattrs = read_xattrs(source)
        if xattrs:
            info.pax_headers = {
                "SCHILY.xattr." + key: value.decode("utf-8", "surrogateescape")
                for key, value in sorted(xattrs.items())
            }
        self._include_parents(rel)
        if kind == tarfile.DIRTYPE:
            self.added_dirs.add(rel)
        if info.type == tarfile.REGTYPE and info.size:
            with open(source, "rb", buffering=0) as data:
                self.tar.addfile(info, cast(BinaryIO, data))
        else:
            self.tar.addfile(info)
        if change.opaque:
            self._whiteout(os.path.join(rel, WHITEOUT_OPAQUE))
        for name in additional:
            info.type, info.linkname, info.size, info.name = tarfile.LNKTYPE, rel, 0, name
            self.tar.addfile(info)

    def close(self) -> None:
        self.tar.close()


def write_changes(
    source: Path,
    changes: Iterable[Change],
    out: BinaryIO,
    *,
    source_date_epoch: int | None = None,
    cancel: threading.Event | None = None,
) -> None:
    """Write the uncompressed layer tar for ``changes``, reading content from ``source``.

    ``cancel`` is checked before each change (containerd's context).

    Raises:
        errdefs.NotFound: a changed file vanished while writing.
        errdefs.Canceled: ``cancel`` was set; ``out`` holds a partial tar.
    """
    writer = _ChangeWriter(os.fspath(source), out, source_date_epoch)
    try:
        for change in changes:
            if cancel is not None and cancel.is_set():
                raise errdefs.Canceled(f"diff canceled before {change.path!r}")
            writer.handle(change)
    except FileNotFoundError as exc:
        raise errdefs.NotFound(f"diff source changed while writing: {exc.filename}") from exc
    writer.close()


def write_diff(
    lower: Path,
    upper: Path,
    out: BinaryIO,
    *,
    source_date_epoch: int | None = None,
    cancel: threading.Event | None = None,
) -> None:
    """Write the layer tar turning ``lower`` into ``upper`` (a double walk).

    Args:
        lower: the parent's tree (e.g. a read-only view of the parent snapshot).
        upper: the new tree.
        out: receives the uncompressed tar; flushed, not closed.
        source_date_epoch: clamp every mtime to this (seconds); whiteouts get it.
        cancel: stop with :class:`errdefs.Canceled` once set (checked per change).

    Raises:
        errdefs.NotFound: ``lower`` or ``upper`` does not exist or changed while
            being read.
        errdefs.Canceled: ``cancel`` was set.
    """
    for root in (lower, upper):
        if not os.path.isdir(root):
            raise errdefs.NotFound(f"diff root {str(root)!r} is not a directory")
    write_changes(
        upper, changes(lower, upper), out, source_date_epoch=source_date_epoch, cancel=cancel
    )


def write_overlay_diff(
    upper: Path,
    out: BinaryIO,
    *,
    source_date_epoch: int | None = None,
    cancel: threading.Event | None = None,
) -> None:
    """Write the layer tar of an overlayfs upper directory (whiteouts converted).

    Raises:
        errdefs.NotFound: ``upper`` does not exist or changed while being read.
        errdefs.Canceled: ``cancel`` was set.
    """
    if not os.path.isdir(upper):
        raise errdefs.NotFound(f"overlay upper {str(upper)!r} is not a directory")
    write_changes(
        upper,
        overlay_upper_changes(upper),
        out,
        source_date_epoch=source_date_epoch,
        cancel=cancel,
    )


@attrs.frozen
class DiffResult:
    """A written layer blob: ``digest``/``size`` of the bytes as stored,
    ``diff_id``/``uncompressed_size`` of the tar inside."""

    media_type: str
    digest: str
    size: int
    diff_id: str
    uncompressed_size: int


class _Digester:
    """A write-through that digests and counts what passes."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes, /) -> int:
        self.hash.update(data)
        self.size += len(data)
        written = self._out.write(data)
        return len(data) if written is None else written

    def flush(self) -> None:
        self._out.flush()

    def tell(self) -> int:
        return self.size


def compress(
    produce: Callable[[BinaryIO], None], out: BinaryIO, compression: Compression
) -> DiffResult:
    """Run ``produce`` (which writes a tar) into ``out`` with ``compression``.

    ``compress(lambda w: write_diff(lower, upper, w), blob, "gzip")`` is the
    walking differ's ``Compare``: the result names the media type, the blob's
    digest and size, and the DiffID for the ``containerd.io/uncompressed`` label.

    Raises:
        errdefs.InvalidArgument: an unknown compression.
    """
    if compression not in MEDIA_TYPES:
        raise errdefs.InvalidArgument(f"unknown compression {compression!r}")
    stored = _Digester(out)
    with compress_stream(cast(BinaryIO, stored), compression) as writer:
        tar = _Digester(writer)
        produce(cast(BinaryIO, tar))
    return DiffResult(
        media_type=MEDIA_TYPES[compression],
        digest="sha256:" + stored.hash.hexdigest(),
        size=stored.size,
        diff_id="sha256:" + tar.hash.hexdigest(),
        uncompressed_size=tar.size,
    )
