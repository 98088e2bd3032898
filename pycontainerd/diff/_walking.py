"""The walking differ: containerd's ``diff/apply`` and ``diff/walking``.

``apply`` unpacks a layer blob from the content store onto the mounts of an
active snapshot and answers the *applied* descriptor: the uncompressed tar
(``application/vnd.oci.image.layer.v1.tar``) whose digest is the DiffID,
computed while extracting, for the unpacker to compare with the image
config's ``rootfs.diff_ids``::

    mounts = snapshotter.prepare(key, parent)
    applied = differ.apply(layer_desc, mounts, content)   # applied.digest == diff_id
    snapshotter.commit(chain_id, key)

Like containerd on Linux, a single overlay mount with an ``upperdir`` is not
mounted: the layer is written straight into the upper directory with
overlayfs whiteouts (char 0/0, ``trusted.overlay.opaque``), its lowerdirs
giving the metadata of implied parent directories; a single bind mount is
written into its source. Anything else is mounted on a temporary directory.

``compare`` writes the layer that turns the ``lower`` mounts into the
``upper`` mounts (both mounted read-only) into the content store, compressed
as asked, labelled ``containerd.io/uncompressed=<diff_id>``.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from pycontainerd.api import errdefs
from pycontainerd.api.types import Descriptor, Mount
from pycontainerd.archive import (
    Compression,
    ConvertWhiteout,
    apply_layer,
    compress,
    decompress_stream,
    media_type_compression,
    write_diff,
)
from pycontainerd.content import Info, Writer
from pycontainerd.mount import with_readonly_temp_mount, with_temp_mount

LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
LAYER_GZIP = LAYER_TAR + "+gzip"
LAYER_ZSTD = LAYER_TAR + "+zstd"
UNCOMPRESSED_LABEL = "containerd.io/uncompressed"
_BY_MEDIA_TYPE: dict[str, Compression] = {
    LAYER_TAR: "uncompressed",
    LAYER_GZIP: "gzip",
    LAYER_ZSTD: "zstd",
}


class ContentAccess(Protocol):
    """What the differ needs of a (namespaced) content store."""

    def info(self, digest: str) -> Info: ...

    def blob_path(self, digest: str) -> Path:
        """The local file of a blob the namespace owns."""
        ...

    def writer(self, ref: str, total: int = 0, expected: str = "") -> Writer: ...


class _FileReader:
    """A blob file read in large chunks (``Readable``)."""

    def __init__(self, path: Path) -> None:
        self._f = open(path, "rb", buffering=0)  # noqa: SIM115 (closed by close())

    def read(self, size: int = -1, /) -> bytes:
        return self._f.read(size if size >= 0 else 1 << 30)

    def close(self) -> None:
        self._f.close()


class _WriterIO:
    """A content writer as the file object the archive writer expects."""

    def __init__(self, writer: Writer) -> None:
        self._w = writer

    def write(self, data: bytes, /) -> int:
        return self._w.write(bytes(data))

    def flush(self) -> None:
        pass


def _option(m: Mount, key: str) -> str | None:
    prefix = key + "="
    for opt in m.options:
        if opt.startswith(prefix):
            return opt[len(prefix) :]
    return None


@contextlib.contextmanager
def _target(mounts: Sequence[Mount], tmp: Path) -> Iterator[tuple[Path, list[Path]]]:
    """Where to write a layer for ``mounts``: (root, lowerdirs) and whether to convert."""
    if len(mounts) == 1 and mounts[0].type == "overlay" and _option(mounts[0], "upperdir"):
        upper = _option(mounts[0], "upperdir") or ""
        lowers = (_option(mounts[0], "lowerdir") or "").split(":")
        yield Path(upper), [Path(p) for p in lowers if p]
        return
    if len(mounts) == 1 and mounts[0].type == "bind" and "ro" not in mounts[0].options:
        yield Path(mounts[0].source), []
        return
    tmp.mkdir(parents=True, exist_ok=True)
    with with_temp_mount(mounts, temp_dir=tmp) as root:
        yield Path(root), []


def _overlay_upper(mounts: Sequence[Mount]) -> bool:
    return len(mounts) == 1 and mounts[0].type == "overlay" and bool(_option(mounts[0], "upperdir"))


class WalkingDiffer:
    """Apply and compare layers (see the module docstring).

    Args:
        tmp: where temporary mount points are made (``<root>/tmpmounts``).
    """

    def __init__(self, tmp: Path) -> None:
        self.tmp = Path(tmp)

    def apply(
        self, desc: Descriptor, mounts: Sequence[Mount], content: ContentAccess
    ) -> Descriptor:
        """Unpack the layer ``desc`` onto ``mounts``.

        Raises:
            errdefs.NotFound: the namespace does not own the blob.
            errdefs.NotImplemented_: a media type that is not a layer this differ knows.
            errdefs.InvalidArgument: a hostile or malformed layer; nothing is written
                outside the snapshot, which stays removable.
            errdefs.DataLoss: a truncated or corrupt layer.
        """
        if not mounts:
            raise errdefs.InvalidArgument("diff.apply: no mounts to apply to")
        if desc.media_type:
            # raises NotImplemented_ for what is not a layer; None means "detect"
            # (Docker's plain rootfs.diff.tar), as containerd's DiffCompression
            media_type_compression(desc.media_type)
        content.info(desc.digest)
        reader = _FileReader(content.blob_path(desc.digest))
        try:
            with _target(mounts, self.tmp) as (root, lowers), decompress_stream(reader) as tar:
                convert: ConvertWhiteout | None = "overlay" if _overlay_upper(mounts) else None
                result = apply_layer(tar, root, convert_whiteout=convert, parents=lowers)
        finally:
            reader.close()
        return Descriptor(media_type=LAYER_TAR, digest=result.diff_id, size=result.size)

    def compare(
        self,
        lower: Sequence[Mount],
        upper: Sequence[Mount],
        content: ContentAccess,
        *,
        media_type: str = "",
        ref: str = "",
        labels: Mapping[str, str] | None = None,
        source_date_epoch: int | None = None,
    ) -> Descriptor:
        """Write the layer from ``lower`` to ``upper`` into the content store.

        Raises:
            errdefs.NotImplemented_: a media type other than tar, tar+gzip, tar+zstd.
        """
        media_type = media_type or LAYER_GZIP
        compression = _BY_MEDIA_TYPE.get(media_type)
        if compression is None:
            raise errdefs.NotImplemented_(f"diff.diff: unsupported media type {media_type!r}")
        ref = ref or f"diff-{time.time_ns()}-{os.getpid()}"
        self.tmp.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as stack:
            if lower:
                lower_root = stack.enter_context(with_readonly_temp_mount(lower, temp_dir=self.tmp))
            else:
                lower_root = stack.enter_context(_empty_dir(self.tmp))
            upper_root = stack.enter_context(with_readonly_temp_mount(upper, temp_dir=self.tmp))
            writer = content.writer(ref)
            try:
                if writer.status().offset:
                    writer.truncate(0)
                result = compress(
                    lambda out: write_diff(
                        Path(lower_root), Path(upper_root), out, source_date_epoch=source_date_epoch
                    ),
                    _WriterIO(writer),  # type: ignore[arg-type]
                    compression,
                )
                all_labels = {**(labels or {}), UNCOMPRESSED_LABEL: result.diff_id}
                with contextlib.suppress(errdefs.AlreadyExists):  # the same layer: the answer
                    writer.commit(result.size, result.digest, all_labels)
            finally:
                writer.close()
        return Descriptor(media_type=media_type, digest=result.digest, size=result.size)


@contextlib.contextmanager
def _empty_dir(tmp: Path) -> Iterator[str]:
    path = tmp / f"empty-{time.time_ns()}"
    path.mkdir(mode=0o755)
    try:
        yield str(path)
    finally:
        path.rmdir()
