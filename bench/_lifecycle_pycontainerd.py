"""The lifecycle benchmark's client against pycontainerd, over its msgpack-RPC socket.

Runs under the project venv. Content, leases and the unpack are
``_unpack_pycontainerd.PycontainerdDriver``'s (in this benchmark's namespace);
a lifecycle is the same calls as containerd's (``_lifecycle_containerd``), as
plain ``snapshots.*``, ``containers.*`` and ``tasks.*`` requests, the lease in
the call's meta, no stdio (the shim gives the container ``/dev/null``). Each
thread has its own connection (:class:`pycontainerd.client.Client` is one
blocking connection). Phases and output are ``_lifecycle_worker``'s.

    .venv/bin/python bench/_lifecycle_pycontainerd.py --address SOCK \
        --daemon-pid PID --layer FILE --spec FILE
"""

from __future__ import annotations

import sys
from typing import Any

import _lifecycle_worker as lw
from _unpack_pycontainerd import TIMEOUT, PycontainerdDriver

from pycontainerd.client import Client

SPEC_TYPE_URL = "types.containerd.io/opencontainers/runtime-spec/1/Spec"


class PycontainerdSession:
    """:class:`_lifecycle_worker.Session` on a connection of its own."""

    def __init__(self, address: str, lease: str | None) -> None:
        self.client = Client(address, namespace=lw.NAMESPACE, timeout=TIMEOUT)
        self.lease = lease

    def _call(self, method: str, req: dict[str, Any]) -> Any:
        return self.client.call(method, req, lease=self.lease)

    def prepare(self, key: str, parent: str) -> Any:
        req = {"snapshotter": lw.SNAPSHOTTER, "key": key, "parent": parent}
        return self._call("snapshots.prepare", req)["mounts"]

    def mounts(self, key: str) -> Any:
        return self._call("snapshots.mounts", {"snapshotter": lw.SNAPSHOTTER, "key": key})["mounts"]

    def create_container(self, cid: str, spec: dict[str, Any], key: str) -> None:
        container = {
            "id": cid,
            "runtime": {"name": lw.RUNTIME},
            "spec": {"type_url": SPEC_TYPE_URL, "value": spec},
            "snapshotter": lw.SNAPSHOTTER,
            "snapshot_key": key,
        }
        self._call("containers.create", {"container": container})

    def create_task(self, cid: str, mounts: Any) -> int:
        return int(self._call("tasks.create", {"container_id": cid, "rootfs": mounts})["pid"])

    def start(self, cid: str) -> int:
        return int(self._call("tasks.start", {"container_id": cid})["pid"])

    def kill(self, cid: str, signal: int) -> None:
        self._call("tasks.kill", {"container_id": cid, "signal": signal})

    def wait(self, cid: str) -> int:
        return int(self._call("tasks.wait", {"container_id": cid})["exit_status"])

    def delete_task(self, cid: str) -> None:
        self._call("tasks.delete", {"container_id": cid})

    def delete_container(self, cid: str) -> None:
        self._call("containers.delete", {"id": cid})

    def remove_snapshot(self, key: str) -> None:
        self._call("snapshots.remove", {"snapshotter": lw.SNAPSHOTTER, "key": key})

    def close(self) -> None:
        self.client.close()


class LifecyclePycontainerd(PycontainerdDriver):
    """The unpack driver in :data:`_lifecycle_worker.NAMESPACE`, with sessions."""

    def __init__(self, address: str) -> None:
        super().__init__(address)
        self.client.close()
        self.client = Client(address, namespace=lw.NAMESPACE, timeout=TIMEOUT)
        self.address = address

    def create_lease(self, labels: dict[str, str]) -> str:
        self.lease = super().create_lease(labels)
        return self.lease

    def delete_lease(self, lease: str, sync: bool) -> None:
        self.lease = None
        super().delete_lease(lease, sync)

    def session(self) -> PycontainerdSession:
        return PycontainerdSession(self.address, self.lease)


if __name__ == "__main__":
    sys.exit(lw.main("_lifecycle_pycontainerd.py", LifecyclePycontainerd))
