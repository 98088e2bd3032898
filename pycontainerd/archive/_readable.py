"""``Readable``: what every stage of a layer stream reads from (a blob, a
decompressor, the gunzip child), so that none of them imports another for it."""

from __future__ import annotations

from typing import Protocol


class Readable(Protocol):
    """The one method a layer stream needs."""

    def read(self, size: int = -1, /) -> bytes: ...
