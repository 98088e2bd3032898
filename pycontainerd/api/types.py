"""Types shared by several services (containerd's ``api/types``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs


@attrs.frozen(kw_only=True)
class Empty:
    """``google.protobuf.Empty``: the map ``{}``."""


@attrs.frozen(kw_only=True)
class FieldMask:
    """``google.protobuf.FieldMask``: ``{"paths": [...]}``."""

    paths: list[str] = attrs.field(factory=list)


@attrs.frozen(kw_only=True)
class AnyValue:
    """``google.protobuf.Any``: ``type_url`` plus the document as a map (or ``bin``)."""

    type_url: str = ""
    value: Any = None


@attrs.frozen(kw_only=True)
class RpcStatus:
    """``google.rpc.Status`` with the errdefs code name (``NotFound``) as ``code``."""

    code: str = ""
    message: str = ""


@attrs.frozen(kw_only=True)
class Namespace:
    name: str = ""
    labels: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class Envelope:
    """An event as subscribers see it; ``sequence`` is the journal's (from 1)."""

    sequence: int = 0
    timestamp: datetime | None = None
    namespace: str = ""
    topic: str = ""
    event: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class Platform:
    os: str = ""
    architecture: str = ""
    variant: str = ""
    os_version: str = ""


@attrs.frozen(kw_only=True)
class Descriptor:
    media_type: str = ""
    digest: str = ""
    size: int = 0
    annotations: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class Mount:
    type: str = ""
    source: str = ""
    target: str = ""
    options: list[str] = attrs.field(factory=list)
