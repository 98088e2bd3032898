"""How far a request's fields may go: the ranges and sizes :mod:`.convert` checks.

Integers take the range of containerd's protobuf type for the field: ``int64``
unless the field's metadata says otherwise (``pid: int = attrs.field(default=0,
metadata=UINT32)``), so nothing beyond what sqlite and the kernel take reaches
a store. Sizes are capped so that a request costs time and memory in
proportion to what it means, not to what a client can pack into 16 MiB:

======================  ==========================================================
``str``                 at most :data:`MAX_STRING` characters
``list``, map           at most :data:`MAX_ITEMS` items (entries)
``filters``             at most :data:`MAX_FILTERS` strings of at most
                        :data:`MAX_FILTER_LENGTH` characters each
======================  ==========================================================

Labels keep containerd's own rule on top (:mod:`.labels`: key and value at most
4096 bytes), identifiers theirs (:mod:`.identifiers`: 76 characters). Responses
are not capped (a client lists 100 000 blobs); their integers are checked all
the same.
"""

from __future__ import annotations

import attrs

MAX_STRING = 64 * 1024
"""Characters of one ``str`` field of a request (a path, a name, a token)."""
MAX_ITEMS = 64 * 1024
"""Items of one list, entries of one map, in a request."""
MAX_FILTERS = 128
"""Filter strings of one ``filters`` list (they are OR-ed)."""
MAX_FILTER_LENGTH = 16 * 1024
"""Characters of one filter string: room for any label (4096 bytes) quoted."""
MAX_VALUES = 1 << 18
"""Values (array items, map entries, arrays and maps) one request may decode
to, checked by the server's decoder while it decodes: msgpack spends one byte
on an empty array that Python spends 56 on, so a 16 MiB frame could otherwise
decode to 1 GiB in 3 s of the event loop. Arrays and maps are also at most
:data:`MAX_ITEMS` long there."""

INT_RANGES: dict[str, tuple[int, int]] = {
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}

KEY = "pycontainerd.bounds"
"""The attrs metadata key holding a field's :class:`Bounds`."""


@attrs.frozen
class Bounds:
    """A field's own bounds, where the defaults above do not fit.

    Attributes:
        int_type: the protobuf integer type (a key of :data:`INT_RANGES`).
        max_length: characters of a ``str``, items of a list or map.
        max_item_length: characters of each ``str`` of a list.
    """

    int_type: str = "int64"
    max_length: int | None = None
    max_item_length: int | None = None


def bounds(
    *, int_type: str = "int64", max_length: int | None = None, max_item_length: int | None = None
) -> dict[str, Bounds]:
    """attrs field metadata carrying :class:`Bounds`."""
    if int_type not in INT_RANGES:
        raise ValueError(f"unknown integer type {int_type!r}")
    return {KEY: Bounds(int_type, max_length, max_item_length)}


UINT32 = bounds(int_type="uint32")
UINT64 = bounds(int_type="uint64")
INT32 = bounds(int_type="int32")
FILTERS = bounds(max_length=MAX_FILTERS, max_item_length=MAX_FILTER_LENGTH)
FILTER = bounds(max_length=MAX_FILTER_LENGTH)
