"""``Session``: what the high-level objects (:class:`Image`, :class:`Task`,
:class:`Container`) use of the :class:`~pycontainerd.client.Client` that made
them.

They are typed against this Protocol, not the ``Client`` class, so that their
modules stay below ``_sync`` (which imports them lazily, on first use): no
module of the client imports one that imports it back.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pycontainerd.wire import Client as Connection

    from ._content import Content
    from ._snapshots import Snapshots


class Session(Protocol):
    """A connection in one namespace, with its content store, snapshotters and leases."""

    @property
    def conn(self) -> Connection: ...

    @property
    def namespace(self) -> str: ...

    @property
    def content(self) -> Content: ...

    def snapshots(self, name: str = "overlayfs") -> Snapshots: ...

    def with_lease(
        self, *, expire: timedelta | None = ..., sync_delete: bool = False
    ) -> AbstractContextManager[str]: ...
