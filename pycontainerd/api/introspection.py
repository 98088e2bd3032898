"""containerd's Introspection service (``introspection.*``)."""

from __future__ import annotations

import attrs

from .bounds import FILTERS
from .types import Platform, RpcStatus


@attrs.frozen(kw_only=True)
class PluginsRequest:
    filters: list[str] = attrs.field(factory=list, metadata=FILTERS)
    """Fields ``type``, ``id``, ``capabilities``, ``exports.<key>``."""


@attrs.frozen(kw_only=True)
class Plugin:
    type: str = ""
    id: str = ""
    requires: list[str] = attrs.field(factory=list)
    platforms: list[Platform] = attrs.field(factory=list)
    exports: dict[str, str] = attrs.field(factory=dict)
    capabilities: list[str] = attrs.field(factory=list)
    init_err: RpcStatus | None = None
    """Set when the plugin could not start; the daemon went on without it."""


@attrs.frozen(kw_only=True)
class PluginsResponse:
    plugins: list[Plugin] = attrs.field(factory=list)


@attrs.frozen(kw_only=True)
class DeprecationWarning_:
    id: str = ""
    message: str = ""


@attrs.frozen(kw_only=True)
class ServerResponse:
    uuid: str = ""
    pid: int = 0
    pidns: int = 0
    deprecations: list[DeprecationWarning_] = attrs.field(factory=list)
