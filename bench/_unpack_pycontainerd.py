"""The unpack benchmark's client against pycontainerd, over its msgpack-RPC socket.

Runs under the project venv with the client library: blobs written through
``client.content.writer`` (1 MiB ``content.write`` requests, pipelined), the
unpack as plain ``snapshots.prepare``, ``diff.apply``, ``snapshots.commit``
calls with the lease in the call's meta, the same calls as containerd's.
Phases and output are ``_unpack_worker``'s.

    .venv/bin/python bench/_unpack_pycontainerd.py --address SOCK \
        --daemon-pid PID unpack --layers FILE --lease ID --run 0 --snapshots-dir DIR
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import _unpack_worker
import msgpack

from pycontainerd.client import Client

TIMEOUT = 600.0


class PycontainerdDriver:
    """:class:`_unpack_worker.Driver` over one :class:`pycontainerd.client.Client`."""

    def __init__(self, address: str) -> None:
        self.client = Client(address, namespace=_unpack_worker.NAMESPACE, timeout=TIMEOUT)
        self.lease: str | None = None
        self.about = {"msgpack": ".".join(map(str, msgpack.version))}

    def _call(self, method: str, req: dict[str, Any]) -> Any:
        return self.client.call(method, req, lease=self.lease)

    def create_lease(self, labels: dict[str, str]) -> str:
        return self.client.leases.create(labels=labels).id

    def delete_lease(self, lease: str, sync: bool) -> None:
        self.client.leases.delete(lease, sync=sync)

    def write_blob(self, path: Path, digest: str, size: int, labels: dict[str, str]) -> None:
        self.client.content.lease = self.lease
        try:
            with (
                self.client.content.writer(f"bench-unpack-{digest}", size, digest) as w,
                path.open("rb") as f,
            ):
                while chunk := f.read(_unpack_worker.CHUNK):
                    w.write(chunk)
                got = w.commit(size, digest, labels)
        finally:
            self.client.content.lease = None
        if got != digest:
            raise RuntimeError(f"pycontainerd commit of {path} answered {got}, not {digest}")

    def prepare(self, key: str, parent: str) -> Any:
        req = {"snapshotter": _unpack_worker.SNAPSHOTTER, "key": key, "parent": parent}
        return self._call("snapshots.prepare", req)["mounts"]

    def apply(self, layer: dict[str, Any], mounts: Any) -> str:
        reply = self._call("diff.apply", {"diff": layer, "mounts": mounts})
        return str(reply["applied"]["digest"])

    def commit(self, name: str, key: str) -> None:
        req = {"snapshotter": _unpack_worker.SNAPSHOTTER, "name": name, "key": key}
        self._call("snapshots.commit", req)

    def remove(self, key: str) -> None:
        self._call("snapshots.remove", {"snapshotter": _unpack_worker.SNAPSHOTTER, "key": key})

    def cleanup(self) -> None:
        self._call("snapshots.cleanup", {"snapshotter": _unpack_worker.SNAPSHOTTER})


if __name__ == "__main__":
    sys.exit(_unpack_worker.main("_unpack_pycontainerd.py", PycontainerdDriver))
