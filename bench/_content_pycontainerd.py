"""The content benchmark's client against pycontainerd, over its msgpack-RPC socket.

Runs under the project venv with the client library: writes through
``client.content.writer`` (its own connection, 1 MiB ``content.write`` requests
pipelined :data:`pycontainerd.client._content.WINDOW` deep), reads through
``client.content.read`` (the daemon streams 1 MiB items), lists through
``client.content.walk`` (one ``content.list`` reply). Phases and output are
``_content_worker``'s.

    .venv/bin/python bench/_content_pycontainerd.py --address SOCK \
        --daemon-pid PID read --blob FILE
"""

from __future__ import annotations

import collections
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import _content_worker
import msgpack

from pycontainerd.client import Client, Content
from pycontainerd.wire import PendingCall

INGEST_WINDOW = 8
"""Single-message ``content.write`` commits in flight during the small-blob ingest
(more only adds GIL contention between the daemon's worker threads: 4-16 measured
alike, 64 slower)."""


class PycontainerdDriver:
    """:class:`_content_worker.Driver` over one :class:`pycontainerd.client.Client`."""

    def __init__(self, address: str) -> None:
        self.client = Client(address, namespace=_content_worker.NAMESPACE, timeout=600)
        self.listing = Content(self.client.conn, address, _content_worker.LIST_NAMESPACE)
        self.lease: str | None = None
        self.about = {"msgpack": ".".join(map(str, msgpack.version))}

    def _write(self, ref: str, blob: bytes, digest: str, labels: dict[str, str]) -> None:
        with self.client.content.writer(ref, total=len(blob), expected=digest) as w:
            w.write(blob)
            got = w.commit(len(blob), digest, labels)
        if got != digest:
            raise RuntimeError(f"pycontainerd commit of {ref} answered {got}, not {digest}")

    def write_leased(self, ref: str, blob: bytes, digest: str) -> None:
        expire = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.lease = self.client.leases.create(labels={"containerd.io/gc.expire": expire}).id
        self.client.content.lease = self.lease
        try:
            self._write(ref, blob, digest, {})
        finally:
            self.client.content.lease = None

    def release(self) -> None:
        if self.lease is None:
            return
        self.client.leases.delete(self.lease, sync=True)
        self.lease = None

    def put(self, ref: str, blob: bytes, digest: str, labels: dict[str, str]) -> None:
        self._write(ref, blob, digest, labels)

    def read(self, digest: str) -> list[bytes]:
        return list(self.client.content.read(digest))

    def ingest_many(self, blobs: list[tuple[bytes, str]], labels: dict[str, str]) -> None:
        """One ``content.write`` commit carrying the data per blob, pipelined on the
        client's connection, :data:`INGEST_WINDOW` in flight."""
        pending: collections.deque[PendingCall] = collections.deque()
        conn = self.client.conn
        for data, digest in blobs:
            req: dict[str, Any] = {
                "action": "commit",
                "ref": f"bench-list-{digest}",
                "total": len(data),
                "expected": digest,
                "data": data,
                "labels": labels,
            }
            pending.append(
                conn.request("content.write", req, namespace=_content_worker.LIST_NAMESPACE)
            )
            while len(pending) >= INGEST_WINDOW:
                pending.popleft().wait()
        while pending:
            pending.popleft().wait()

    def list_decoded(self) -> int:
        return len(self.listing.walk())

    def list_raw(self) -> int:
        """``content.list``'s reply as msgpack-decoded maps (no attrs objects); their count."""
        reply = self.client.conn.call(
            "content.list", {"filters": []}, namespace=_content_worker.LIST_NAMESPACE
        )
        return len(reply["info"])


if __name__ == "__main__":
    sys.exit(_content_worker.main("_content_pycontainerd.py", PycontainerdDriver))
