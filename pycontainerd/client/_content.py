"""``client.content``: the content store over the wire, and ``client.leases``.

:class:`Content` satisfies :class:`pycontainerd.content.Store`, so code written
against the local store runs against the daemon unchanged::

    with c.content.writer("layer-1", total=len(data), expected=digest) as w:
        w.write(data)                 # pipelined: returns before the daemon answers
        w.commit(len(data), digest)
    for chunk in c.content.read(digest):
        ...

A writer is containerd's ``Write`` stream: it has a connection of its own, on
which its ``content.write`` requests are pipelined (at most :data:`WINDOW` in
flight) and to which the daemon locks the ref; closing it (or committing)
releases the ref and keeps the ingest resumable.
"""

from __future__ import annotations

import builtins
import collections
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pycontainerd.api import content as api
from pycontainerd.api import convert, errdefs
from pycontainerd.api import leases as lapi
from pycontainerd.api.content_values import CHUNK, Info, Status
from pycontainerd.wire import Client as Connection
from pycontainerd.wire import PendingCall

WINDOW = 16
"""``content.write`` requests a writer keeps in flight."""
LOCK_RETRIES = 10
EPOCH = datetime.fromtimestamp(0, UTC)


def _info(i: api.ContentInfo) -> Info:
    return Info(
        digest=i.digest,
        size=i.size,
        created_at=i.created_at or EPOCH,
        updated_at=i.updated_at or EPOCH,
        labels=i.labels,
    )


def _status(s: api.ContentStatus) -> Status:
    return Status(
        ref=s.ref,
        offset=s.offset,
        total=s.total,
        started_at=s.started_at or EPOCH,
        updated_at=s.updated_at or EPOCH,
        expected=s.expected,
    )


class RemoteReaderAt:
    """Random access to a blob through ``content.read``."""

    def __init__(self, content: Content, digest: str, size: int) -> None:
        self._content = content
        self._digest = digest
        self.size = size

    def read_at(self, offset: int, size: int) -> bytes:
        if offset >= self.size or size <= 0:
            return b""
        return b"".join(self._content.read(self._digest, offset, min(size, self.size - offset)))

    def close(self) -> None:
        pass

    def __enter__(self) -> RemoteReaderAt:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RemoteWriter:
    """One ingest over its own connection (see the module docstring)."""

    def __init__(
        self, content: Content, ref: str, total: int, expected: str, lease: str | None
    ) -> None:
        self.ref = ref
        self._lease = lease
        self._pending: collections.deque[PendingCall] = collections.deque()
        self._conn = Connection(content.address, namespace=content.namespace)
        try:
            first = {"action": "stat", "ref": ref, "total": total, "expected": expected}
            for attempt in range(LOCK_RETRIES + 1):
                try:
                    resp = self._call(first)
                    break
                except errdefs.Unavailable:
                    # the ref's previous connection may still be closing (containerd's
                    # local store retries its lock the same way)
                    if attempt == LOCK_RETRIES:
                        raise
                    time.sleep(random.uniform(0.001, 0.005) * (attempt + 1))
        except BaseException:
            self._conn.close()
            raise
        self.offset: int = resp.offset
        self.total: int = resp.total
        self._expected = expected
        self._closed = False
        self._committed = ""

    def _call(self, req: dict[str, Any]) -> api.WriteContentResponse:
        resp = self._conn.call("content.write", req, lease=self._lease)
        return convert.structure(resp, api.WriteContentResponse)

    def _drain(self, limit: int = 0) -> None:
        while len(self._pending) > limit:
            self._pending.popleft().wait()

    def _check_open(self) -> None:
        if self._closed:
            raise errdefs.FailedPrecondition(f"ingest {self.ref!r}: writer is closed")

    def write(self, data: bytes) -> int:
        """Send ``data`` (pipelined); an error surfaces on a later call at the latest."""
        self._check_open()
        view = memoryview(data)
        for at in range(0, len(view), CHUNK):
            chunk = bytes(view[at : at + CHUNK])
            req = {"action": "write", "ref": self.ref, "offset": self.offset, "data": chunk}
            self._pending.append(self._conn.request("content.write", req, lease=self._lease))
            self.offset += len(chunk)
            self._drain(WINDOW)
        return len(data)

    def _stat(self) -> api.WriteContentResponse:
        self._check_open()
        self._drain()
        return self._call({"action": "stat", "ref": self.ref})

    def digest(self) -> str:
        if self._committed:
            return self._committed
        return self._stat().digest

    def status(self) -> Status:
        resp = self._stat()
        return Status(
            ref=self.ref,
            offset=resp.offset,
            total=resp.total,
            started_at=resp.started_at or EPOCH,
            updated_at=resp.updated_at or EPOCH,
            expected=self._expected,
        )

    def truncate(self, size: int) -> None:
        if size != 0:
            raise errdefs.InvalidArgument("truncate to a size other than 0 is not supported")
        self._check_open()
        self._drain()
        self._call({"action": "write", "ref": self.ref, "offset": 0})
        self.offset = 0

    def commit(
        self, size: int = 0, expected: str = "", labels: Mapping[str, str] | None = None
    ) -> str:
        """Raises ``FailedPrecondition`` (size or digest) or ``AlreadyExists``; the
        writer is closed either way, the ingest kept on failure."""
        self._check_open()
        try:
            self._drain()
            resp = self._call(
                {
                    "action": "commit",
                    "ref": self.ref,
                    "offset": self.offset,
                    "total": size,
                    "expected": expected,
                    "labels": dict(labels or {}),
                }
            )
            self._committed = resp.digest
            return resp.digest
        finally:
            self.close()

    def close(self) -> None:
        """Release the ref (the daemon keeps the ingest for a resume)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._drain()
        except errdefs.ErrdefsError:
            pass  # a failed pipelined write: the ingest holds what was written before
        finally:
            self._conn.close()

    def __enter__(self) -> RemoteWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Content:
    """``content.*`` in one namespace (a :class:`pycontainerd.content.Store`)."""

    def __init__(
        self, conn: Connection, address: str, namespace: str, lease: str | None = None
    ) -> None:
        self._conn = conn
        self.address = address
        self.namespace = namespace
        self.lease = lease

    def _call(self, method: str, req: dict[str, Any]) -> Any:
        return self._conn.call(method, req, namespace=self.namespace, lease=self.lease)

    def info(self, digest: str) -> Info:
        resp = self._call("content.info", {"digest": digest})
        return _info(convert.structure(resp, api.InfoResponse).info)

    def update(self, info: Info, paths: Sequence[str] = ()) -> Info:
        req: dict[str, Any] = {"info": {"digest": info.digest, "labels": dict(info.labels)}}
        if paths:
            req["update_mask"] = {"paths": list(paths)}
        resp = self._call("content.update", req)
        return _info(convert.structure(resp, api.UpdateContentResponse).info)

    def walk(self, filters: Sequence[str] = ()) -> list[Info]:
        resp = self._call("content.list", {"filters": list(filters)})
        return [_info(i) for i in convert.structure(resp, api.ListContentResponse).info]

    def delete(self, digest: str) -> None:
        self._call("content.delete", {"digest": digest})

    def read(self, digest: str, offset: int = 0, size: int = 0) -> Iterator[bytes]:
        """The blob's bytes from ``offset`` (``size`` <= 0: to the end), in chunks."""
        stream = self._conn.stream(
            "content.read",
            {"digest": digest, "offset": offset, "size": size},
            namespace=self.namespace,
        )
        with stream:
            for item in stream:
                yield item["data"]

    def reader_at(self, digest: str) -> RemoteReaderAt:
        return RemoteReaderAt(self, digest, self.info(digest).size)

    def writer(self, ref: str, total: int = 0, expected: str = "") -> RemoteWriter:
        return RemoteWriter(self, ref, total, expected, self.lease)

    def status(self, ref: str) -> Status:
        resp = self._call("content.status", {"ref": ref})
        return _status(convert.structure(resp, api.StatusResponse).status)

    def list_statuses(self, filters: Sequence[str] = ()) -> list[Status]:
        resp = self._call("content.list_statuses", {"filters": list(filters)})
        return [_status(s) for s in convert.structure(resp, api.ListStatusesResponse).statuses]

    def abort(self, ref: str) -> None:
        self._call("content.abort", {"ref": ref})


class Leases:
    """``leases.*`` in the client's namespace."""

    def __init__(self, conn: Connection, namespace: str) -> None:
        self._conn = conn
        self.namespace = namespace

    def _call(self, method: str, req: dict[str, Any]) -> Any:
        return self._conn.call(method, req, namespace=self.namespace)

    def create(self, id: str = "", labels: Mapping[str, str] | None = None) -> lapi.Lease:
        resp = self._call("leases.create", {"id": id, "labels": dict(labels or {})})
        return convert.structure(resp, lapi.CreateLeaseResponse).lease

    def delete(self, id: str, *, sync: bool = False) -> None:
        self._call("leases.delete", {"id": id, "sync": sync})

    def list(self, filters: Sequence[str] = ()) -> list[lapi.Lease]:
        resp = self._call("leases.list", {"filters": list(filters)})
        return convert.structure(resp, lapi.ListLeasesResponse).leases

    def add_resource(self, id: str, resource_id: str, type: str) -> None:
        self._call("leases.add_resource", {"id": id, "resource": {"id": resource_id, "type": type}})

    def delete_resource(self, id: str, resource_id: str, type: str) -> None:
        req = {"id": id, "resource": {"id": resource_id, "type": type}}
        self._call("leases.delete_resource", req)

    def list_resources(self, id: str) -> builtins.list[lapi.LeaseResource]:
        resp = self._call("leases.list_resources", {"id": id})
        return convert.structure(resp, lapi.ListResourcesResponse).resources
