"""``copy``: feed a writer from a stream, resuming where its ingest stands
(containerd ``content.Copy``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import BinaryIO

from pycontainerd.api import errdefs

from ._interfaces import Writer
from ._local import CHUNK


def copy(
    writer: Writer,
    source: BinaryIO,
    size: int,
    expected: str,
    labels: Mapping[str, str] | None = None,
) -> str:
    """Write ``source`` into ``writer`` from the ingest's offset on, then commit.

    A resumed ingest skips what it holds already: ``source`` is seeked when it
    can be, else the bytes are read and dropped. An ingest longer than ``size``
    starts over.

    Returns:
        The committed digest.

    Raises:
        errdefs.DataLoss: ``source`` ended before ``size`` bytes.
        errdefs.FailedPrecondition: the bytes do not match ``size`` or ``expected``.
    """
    offset = writer.status().offset
    if offset > size > 0:
        writer.truncate(0)
        offset = 0
    if offset:
        try:
            source.seek(offset)
        except (AttributeError, OSError, ValueError):
            skip = offset
            while skip:
                dropped = source.read(min(CHUNK, skip))
                if not dropped:
                    raise errdefs.DataLoss(f"source ended at {offset - skip} of {offset}") from None
                skip -= len(dropped)
    while True:
        chunk = source.read(CHUNK)
        if not chunk:
            break
        writer.write(chunk)
    if size and writer.status().offset < size:
        raise errdefs.DataLoss(f"short copy: {writer.status().offset} of {size} bytes")
    return writer.commit(size, expected, labels)
