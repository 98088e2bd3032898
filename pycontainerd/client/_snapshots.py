"""``client.snapshots(name)``: one snapshotter of the daemon, over the wire.

:class:`Snapshots` satisfies :class:`pycontainerd.snapshots.Snapshotter`, so
code written against a local snapshotter runs against the daemon unchanged::

    sn = c.snapshots("overlayfs")
    mounts = sn.prepare("extract-1", "", {"containerd.io/gc.root": now})
    with mount.with_temp_mount(mounts) as root:
        ...
    sn.commit("layer-1", "extract-1")

What it creates is held by ``sn.lease`` when set (``Client.with_lease`` sets it
for the snapshotters made inside its block).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pycontainerd.api import convert, errdefs
from pycontainerd.api import snapshots as api
from pycontainerd.api.snapshot_values import Info, Kind, Usage
from pycontainerd.api.types import Mount
from pycontainerd.wire import Client as Connection

EPOCH = datetime.fromtimestamp(0, UTC)


def _info(i: api.SnapshotInfo) -> Info:
    return Info(
        kind=Kind.parse(i.kind),
        name=i.name,
        parent=i.parent,
        labels=i.labels,
        created_at=i.created_at or EPOCH,
        updated_at=i.updated_at or EPOCH,
    )


class Snapshots:
    """``snapshots.*`` of one snapshotter in one namespace (a ``Snapshotter``).

    Args:
        conn: the client's connection.
        namespace: whose snapshots.
        snapshotter: the daemon's snapshotter plugin id (``overlayfs``, ``native``).
        lease: the lease that holds what this creates, or ``None``.
    """

    def __init__(
        self, conn: Connection, namespace: str, snapshotter: str, lease: str | None = None
    ) -> None:
        self._conn = conn
        self.namespace = namespace
        self.snapshotter = snapshotter
        self.lease = lease
        self._closed = False

    def _call(self, method: str, req: dict[str, Any]) -> Any:
        if self._closed:
            raise errdefs.Unavailable(f"snapshotter {self.snapshotter!r} is closed")
        req = {"snapshotter": self.snapshotter, **req}
        return self._conn.call(method, req, namespace=self.namespace, lease=self.lease)

    def stat(self, key: str) -> Info:
        resp = self._call("snapshots.stat", {"key": key})
        return _info(convert.structure(resp, api.StatSnapshotResponse).info)

    def update(self, info: Info, paths: Sequence[str] = ()) -> Info:
        req: dict[str, Any] = {"info": {"name": info.name, "labels": dict(info.labels)}}
        if paths:
            req["update_mask"] = {"paths": list(paths)}
        resp = self._call("snapshots.update", req)
        return _info(convert.structure(resp, api.UpdateSnapshotResponse).info)

    def usage(self, key: str) -> Usage:
        resp = convert.structure(self._call("snapshots.usage", {"key": key}), api.UsageResponse)
        return Usage(resp.size, resp.inodes)

    def mounts(self, key: str) -> list[Mount]:
        resp = self._call("snapshots.mounts", {"key": key})
        return convert.structure(resp, api.MountsResponse).mounts

    def prepare(
        self, key: str, parent: str = "", labels: Mapping[str, str] | None = None
    ) -> list[Mount]:
        req = {"key": key, "parent": parent, "labels": dict(labels or {})}
        resp = self._call("snapshots.prepare", req)
        return convert.structure(resp, api.PrepareSnapshotResponse).mounts

    def view(
        self, key: str, parent: str = "", labels: Mapping[str, str] | None = None
    ) -> list[Mount]:
        req = {"key": key, "parent": parent, "labels": dict(labels or {})}
        resp = self._call("snapshots.view", req)
        return convert.structure(resp, api.ViewSnapshotResponse).mounts

    def commit(self, name: str, key: str, labels: Mapping[str, str] | None = None) -> None:
        self._call("snapshots.commit", {"name": name, "key": key, "labels": dict(labels or {})})

    def remove(self, key: str) -> None:
        self._call("snapshots.remove", {"key": key})

    def walk(self, filters: Sequence[str] = ()) -> Iterator[Info]:
        """Every matching snapshot; fetched in one call before the first is yielded."""
        resp = self._call("snapshots.list", {"filters": list(filters)})
        return iter([_info(i) for i in convert.structure(resp, api.ListSnapshotsResponse).info])

    def cleanup(self) -> None:
        self._call("snapshots.cleanup", {})

    def close(self) -> None:
        """Idempotent; the client's connection stays open."""
        self._closed = True
