"""containerd's Content service (``content.*``), with ``Write`` unrolled.

containerd's ``Write`` is a bidirectional stream; here each message is one
``content.write`` request, which clients pipeline on one connection. The
first ``content.write`` of a ``ref`` opens (or resumes) its ingest and locks
the ref to that connection until ``commit``, ``content.abort`` or disconnect.
``content.read`` streams ``{offset, data}`` items of at most 1 MiB.
"""

from __future__ import annotations

from datetime import datetime

import attrs

from .bounds import FILTERS
from .types import FieldMask

WRITE_ACTIONS = ("stat", "write", "commit")


@attrs.frozen(kw_only=True)
class ContentInfo:
    """A committed blob as this namespace sees it."""

    digest: str = ""
    size: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    labels: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class ContentStatus:
    """An ingest in progress."""

    started_at: datetime | None = None
    updated_at: datetime | None = None
    ref: str = ""
    offset: int = 0
    total: int = 0
    expected: str = ""


@attrs.frozen(kw_only=True)
class InfoRequest:
    digest: str = ""


@attrs.frozen(kw_only=True)
class InfoResponse:
    info: ContentInfo = attrs.field(factory=ContentInfo)


@attrs.frozen(kw_only=True)
class UpdateContentRequest:
    info: ContentInfo = attrs.field(factory=ContentInfo)
    update_mask: FieldMask | None = None
    """``labels`` or ``labels.<key>``; absent = replace all labels."""


@attrs.frozen(kw_only=True)
class UpdateContentResponse:
    info: ContentInfo = attrs.field(factory=ContentInfo)


@attrs.frozen(kw_only=True)
class ListContentRequest:
    filters: list[str] = attrs.field(factory=list, metadata=FILTERS)


@attrs.frozen(kw_only=True)
class ListContentResponse:
    info: list[ContentInfo] = attrs.field(factory=list)


@attrs.frozen(kw_only=True)
class DeleteContentRequest:
    digest: str = ""


@attrs.frozen(kw_only=True)
class ReadContentRequest:
    digest: str = ""
    offset: int = 0
    """Negative reads from 0; past the end is ``OutOfRange``."""
    size: int = 0
    """0 or negative: to the end."""


@attrs.frozen(kw_only=True)
class ReadContentResponse:
    offset: int = 0
    data: bytes = b""


@attrs.frozen(kw_only=True)
class StatusRequest:
    ref: str = ""


@attrs.frozen(kw_only=True)
class StatusResponse:
    status: ContentStatus = attrs.field(factory=ContentStatus)


@attrs.frozen(kw_only=True)
class ListStatusesRequest:
    filters: list[str] = attrs.field(factory=list, metadata=FILTERS)


@attrs.frozen(kw_only=True)
class ListStatusesResponse:
    statuses: list[ContentStatus] = attrs.field(factory=list)


@attrs.frozen(kw_only=True)
class WriteContentRequest:
    action: str = "stat"
    """``stat``, ``write`` or ``commit``."""
    ref: str = ""
    total: int = 0
    expected: str = ""
    offset: int = 0
    data: bytes = b""
    labels: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class WriteContentResponse:
    action: str = ""
    started_at: datetime | None = None
    updated_at: datetime | None = None
    offset: int = 0
    total: int = 0
    digest: str = ""
    """``stat`` and ``write``: the digest of the bytes so far; ``commit``: the blob's."""


@attrs.frozen(kw_only=True)
class AbortRequest:
    ref: str = ""
