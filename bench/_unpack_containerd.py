"""The unpack benchmark's client against Debian's containerd, over gRPC.

Runs under the venv made by ``_peers.grpc_python()`` (``containerd`` stubs,
``grpcio``, ``protobuf<3.21``), one channel, the namespace and the lease as
gRPC metadata, as containerd's Go client sends them. Blobs are written with a
pipelined ``Content.Write`` stream (stat, 1 MiB writes, commit); the unpack is
``Snapshots.Prepare``, ``Diff.Apply``, ``Snapshots.Commit`` per layer, the
calls containerd's own unpacker makes. Phases and output are
``_unpack_worker``'s.

    bench/.venv-grpc/bin/python bench/_unpack_containerd.py --address SOCK \
        --daemon-pid PID unpack --layers FILE --lease ID --run 0 --snapshots-dir DIR
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import _unpack_worker
import grpc
from containerd.services.content.v1 import content_pb2, content_pb2_grpc
from containerd.services.diff.v1 import diff_pb2, diff_pb2_grpc
from containerd.services.leases.v1 import leases_pb2, leases_pb2_grpc
from containerd.services.snapshots.v1 import snapshots_pb2, snapshots_pb2_grpc
from containerd.types import descriptor_pb2
from google.protobuf.internal import api_implementation

W = content_pb2
S = snapshots_pb2
TIMEOUT = 600.0
_OPTIONS = [
    ("grpc.max_receive_message_length", 16 << 20),
    ("grpc.max_send_message_length", 16 << 20),
]


class ContainerdDriver:
    """:class:`_unpack_worker.Driver` over one gRPC channel."""

    def __init__(self, address: str) -> None:
        self.channel: Any = grpc.insecure_channel(f"unix://{address}", options=_OPTIONS)
        grpc.channel_ready_future(self.channel).result(timeout=10)
        self.content: Any = content_pb2_grpc.ContentStub(self.channel)
        self.leases: Any = leases_pb2_grpc.LeasesStub(self.channel)
        self.snapshots: Any = snapshots_pb2_grpc.SnapshotsStub(self.channel)
        self.diff: Any = diff_pb2_grpc.DiffStub(self.channel)
        self.lease: str | None = None
        self.about = {
            "grpcio": str(grpc.__version__),
            "protobuf_implementation": str(api_implementation.Type()),
        }

    @property
    def md(self) -> tuple[tuple[str, str], ...]:
        md: tuple[tuple[str, str], ...] = (("containerd-namespace", _unpack_worker.NAMESPACE),)
        if self.lease is not None:
            md += (("containerd-lease", self.lease),)
        return md

    def create_lease(self, labels: dict[str, str]) -> str:
        req = leases_pb2.CreateRequest(labels=labels)
        return str(self.leases.Create(req, metadata=self.md, timeout=TIMEOUT).lease.id)

    def delete_lease(self, lease: str, sync: bool) -> None:
        req = leases_pb2.DeleteRequest(id=lease, sync=sync)
        self.leases.Delete(req, metadata=self.md, timeout=TIMEOUT)

    def write_blob(self, path: Path, digest: str, size: int, labels: dict[str, str]) -> None:
        ref = f"bench-unpack-{digest}"

        def requests() -> Iterator[Any]:
            yield W.WriteContentRequest(action=W.STAT, ref=ref, total=size, expected=digest)
            with path.open("rb") as f:
                offset = 0
                while chunk := f.read(_unpack_worker.CHUNK):
                    yield W.WriteContentRequest(action=W.WRITE, ref=ref, offset=offset, data=chunk)
                    offset += len(chunk)
            yield W.WriteContentRequest(
                action=W.COMMIT, ref=ref, offset=size, total=size, expected=digest, labels=labels
            )

        replies = list(self.content.Write(requests(), metadata=self.md, timeout=TIMEOUT))
        last: Any = replies[-1] if replies else None
        if last is None or last.digest != digest or last.offset != size:
            raise RuntimeError(f"containerd commit of {ref}: unexpected last reply {last}")

    def prepare(self, key: str, parent: str) -> Any:
        req = S.PrepareSnapshotRequest(
            snapshotter=_unpack_worker.SNAPSHOTTER, key=key, parent=parent
        )
        return self.snapshots.Prepare(req, metadata=self.md, timeout=TIMEOUT).mounts

    def apply(self, layer: dict[str, Any], mounts: Any) -> str:
        desc = descriptor_pb2.Descriptor(**layer)
        req = diff_pb2.ApplyRequest(diff=desc, mounts=mounts)
        return str(self.diff.Apply(req, metadata=self.md, timeout=TIMEOUT).applied.digest)

    def commit(self, name: str, key: str) -> None:
        req = S.CommitSnapshotRequest(snapshotter=_unpack_worker.SNAPSHOTTER, name=name, key=key)
        self.snapshots.Commit(req, metadata=self.md, timeout=TIMEOUT)

    def remove(self, key: str) -> None:
        req = S.RemoveSnapshotRequest(snapshotter=_unpack_worker.SNAPSHOTTER, key=key)
        self.snapshots.Remove(req, metadata=self.md, timeout=TIMEOUT)

    def cleanup(self) -> None:
        """``Snapshots.Cleanup``; containerd 1.6's metadata snapshotter answers
        ``Unimplemented`` (its garbage collector already removed the directories)."""
        req = S.CleanupRequest(snapshotter=_unpack_worker.SNAPSHOTTER)
        try:
            self.snapshots.Cleanup(req, metadata=self.md, timeout=TIMEOUT)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise


if __name__ == "__main__":
    sys.exit(_unpack_worker.main("_unpack_containerd.py", ContainerdDriver))
