"""The lifecycle benchmark's client against Debian's containerd, over gRPC.

Runs under the venv made by ``_peers.grpc_python()``. Content, leases and the
unpack are ``_unpack_containerd.ContainerdDriver``'s (in this benchmark's
namespace); a lifecycle is the calls containerd's Go client makes for
``NewContainer(WithNewSnapshot)``, ``NewTask(cio.NullIO)``, ``Start``, ``Wait``,
``Delete(WithSnapshotCleanup)``, the spec sent as the ``Any`` the Go client
sends. All threads share one channel (gRPC multiplexes it), as a Go client
does. Phases and output are ``_lifecycle_worker``'s.

    bench/.venv-grpc/bin/python bench/_lifecycle_containerd.py --address SOCK \
        --daemon-pid PID --layer FILE --spec FILE
"""

from __future__ import annotations

import json
import sys
from typing import Any

import _lifecycle_worker as lw
from _unpack_containerd import ContainerdDriver
from containerd.services.containers.v1 import containers_pb2, containers_pb2_grpc
from containerd.services.snapshots.v1 import snapshots_pb2 as S
from containerd.services.tasks.v1 import tasks_pb2, tasks_pb2_grpc
from google.protobuf import any_pb2

SPEC_TYPE_URL = "types.containerd.io/opencontainers/runtime-spec/1/Spec"
TIMEOUT = 60.0
WAIT_TIMEOUT = 300.0


class ContainerdSession:
    """:class:`_lifecycle_worker.Session` on the driver's channel."""

    def __init__(self, driver: LifecycleContainerd) -> None:
        self.md = driver.md
        self.snapshots: Any = driver.snapshots
        self.containers: Any = driver.containers
        self.tasks: Any = driver.tasks

    def prepare(self, key: str, parent: str) -> Any:
        req = S.PrepareSnapshotRequest(snapshotter=lw.SNAPSHOTTER, key=key, parent=parent)
        return self.snapshots.Prepare(req, metadata=self.md, timeout=TIMEOUT).mounts

    def mounts(self, key: str) -> Any:
        req = S.MountsRequest(snapshotter=lw.SNAPSHOTTER, key=key)
        return self.snapshots.Mounts(req, metadata=self.md, timeout=TIMEOUT).mounts

    def create_container(self, cid: str, spec: dict[str, Any], key: str) -> None:
        value = json.dumps(spec, separators=(",", ":")).encode()
        c = containers_pb2.Container(
            id=cid,
            runtime=containers_pb2.Container.Runtime(name=lw.RUNTIME),
            spec=any_pb2.Any(type_url=SPEC_TYPE_URL, value=value),
            snapshotter=lw.SNAPSHOTTER,
            snapshot_key=key,
        )
        req = containers_pb2.CreateContainerRequest(container=c)
        self.containers.Create(req, metadata=self.md, timeout=TIMEOUT)

    def create_task(self, cid: str, mounts: Any) -> int:
        req = tasks_pb2.CreateTaskRequest(container_id=cid, rootfs=mounts)
        return int(self.tasks.Create(req, metadata=self.md, timeout=TIMEOUT).pid)

    def start(self, cid: str) -> int:
        req = tasks_pb2.StartRequest(container_id=cid)
        return int(self.tasks.Start(req, metadata=self.md, timeout=TIMEOUT).pid)

    def kill(self, cid: str, signal: int) -> None:
        req = tasks_pb2.KillRequest(container_id=cid, signal=signal)
        self.tasks.Kill(req, metadata=self.md, timeout=TIMEOUT)

    def wait(self, cid: str) -> int:
        req = tasks_pb2.WaitRequest(container_id=cid)
        return int(self.tasks.Wait(req, metadata=self.md, timeout=WAIT_TIMEOUT).exit_status)

    def delete_task(self, cid: str) -> None:
        req = tasks_pb2.DeleteTaskRequest(container_id=cid)
        self.tasks.Delete(req, metadata=self.md, timeout=TIMEOUT)

    def delete_container(self, cid: str) -> None:
        req = containers_pb2.DeleteContainerRequest(id=cid)
        self.containers.Delete(req, metadata=self.md, timeout=TIMEOUT)

    def remove_snapshot(self, key: str) -> None:
        req = S.RemoveSnapshotRequest(snapshotter=lw.SNAPSHOTTER, key=key)
        self.snapshots.Remove(req, metadata=self.md, timeout=TIMEOUT)

    def close(self) -> None:
        """The channel is the driver's; nothing to close per thread."""


class LifecycleContainerd(ContainerdDriver):
    """The unpack driver in :data:`_lifecycle_worker.NAMESPACE`, with sessions."""

    def __init__(self, address: str) -> None:
        super().__init__(address)
        self.containers: Any = containers_pb2_grpc.ContainersStub(self.channel)
        self.tasks: Any = tasks_pb2_grpc.TasksStub(self.channel)

    @property
    def md(self) -> tuple[tuple[str, str], ...]:
        md: tuple[tuple[str, str], ...] = (("containerd-namespace", lw.NAMESPACE),)
        if self.lease is not None:
            md += (("containerd-lease", self.lease),)
        return md

    def create_lease(self, labels: dict[str, str]) -> str:
        self.lease = super().create_lease(labels)
        return self.lease

    def delete_lease(self, lease: str, sync: bool) -> None:
        self.lease = None
        super().delete_lease(lease, sync)

    def session(self) -> ContainerdSession:
        return ContainerdSession(self)


if __name__ == "__main__":
    sys.exit(lw.main("_lifecycle_containerd.py", LifecycleContainerd))
