"""The content benchmark's client against Debian's containerd, over gRPC.

Runs under the venv made by ``_peers.grpc_python()`` (``containerd`` stubs,
``grpcio``, ``protobuf<3.21``). Writes are ``Content.Write`` bidi streams sent
pipelined (every request yielded without waiting for its response; gRPC's flow
control bounds what is in flight), in 1 MiB chunks: stat, writes, commit with
the expected digest and size. Reads are ``Content.Read`` with the server's own
chunking. Phases and output are ``_content_worker``'s.

    bench/.venv-grpc/bin/python bench/_content_containerd.py --address SOCK \
        --daemon-pid PID read --blob FILE
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import _content_worker
import grpc
from containerd.services.content.v1 import content_pb2, content_pb2_grpc
from containerd.services.leases.v1 import leases_pb2, leases_pb2_grpc
from google.protobuf.internal import api_implementation

CHUNK = 1 << 20
INGEST_THREADS = 16
"""Concurrent ``Content.Write`` streams of the small-blob ingest."""
_OPTIONS = [
    ("grpc.max_receive_message_length", 16 << 20),
    ("grpc.max_send_message_length", 16 << 20),
]
_LIST_PATH = "/containerd.services.content.v1.Content/List"

W = content_pb2


def _metadata(namespace: str, lease: str | None = None) -> tuple[tuple[str, str], ...]:
    md: tuple[tuple[str, str], ...] = (("containerd-namespace", namespace),)
    if lease is not None:
        md += (("containerd-lease", lease),)
    return md


class ContainerdDriver:
    """:class:`_content_worker.Driver` over one gRPC channel."""

    def __init__(self, address: str) -> None:
        self.channel: Any = grpc.insecure_channel(f"unix://{address}", options=_OPTIONS)
        grpc.channel_ready_future(self.channel).result(timeout=10)
        self.content: Any = content_pb2_grpc.ContentStub(self.channel)
        self.leases: Any = leases_pb2_grpc.LeasesStub(self.channel)
        self.md = _metadata(_content_worker.NAMESPACE)
        self.list_md = _metadata(_content_worker.LIST_NAMESPACE)
        self.lease: str | None = None
        self.about = {
            "grpcio": str(grpc.__version__),
            "protobuf_implementation": str(api_implementation.Type()),
        }
        self.list_raw_call: Any = self.channel.unary_stream(
            _LIST_PATH,
            request_serializer=W.ListContentRequest.SerializeToString,
            response_deserializer=None,
        )

    def _write(
        self,
        ref: str,
        blob: bytes,
        digest: str,
        md: tuple[tuple[str, str], ...],
        labels: dict[str, str],
    ) -> None:
        total = len(blob)

        def requests() -> Iterator[Any]:
            yield W.WriteContentRequest(action=W.STAT, ref=ref, total=total, expected=digest)
            for off in range(0, total, CHUNK):
                yield W.WriteContentRequest(
                    action=W.WRITE, ref=ref, offset=off, data=blob[off : off + CHUNK]
                )
            yield W.WriteContentRequest(
                action=W.COMMIT,
                ref=ref,
                offset=total,
                total=total,
                expected=digest,
                labels=labels,
            )

        replies = list(self.content.Write(requests(), metadata=md, timeout=600))
        last: Any = replies[-1] if replies else None
        if last is None or last.digest != digest or last.offset != total:
            raise RuntimeError(f"containerd commit of {ref}: unexpected last reply {last}")

    def write_leased(self, ref: str, blob: bytes, digest: str) -> None:
        expire = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        req = leases_pb2.CreateRequest(labels={"containerd.io/gc.expire": expire})
        self.lease = str(self.leases.Create(req, metadata=self.md).lease.id)
        self._write(ref, blob, digest, _metadata(_content_worker.NAMESPACE, self.lease), {})

    def release(self) -> None:
        if self.lease is None:
            return
        req = leases_pb2.DeleteRequest(id=self.lease, sync=True)
        self.leases.Delete(req, metadata=self.md, timeout=120)
        self.lease = None

    def put(self, ref: str, blob: bytes, digest: str, labels: dict[str, str]) -> None:
        self._write(ref, blob, digest, self.md, labels)

    def read(self, digest: str) -> list[bytes]:
        req = W.ReadContentRequest(digest=digest)
        return [r.data for r in self.content.Read(req, metadata=self.md, timeout=600)]

    def ingest_many(self, blobs: list[tuple[bytes, str]], labels: dict[str, str]) -> None:
        """One ``Content.Write`` stream per blob, a single commit request carrying the
        data (containerd's service writes ``data`` before committing), 16 at once."""

        def one(item: tuple[bytes, str]) -> None:
            data, digest = item
            req = W.WriteContentRequest(
                action=W.COMMIT,
                ref=f"bench-list-{digest}",
                total=len(data),
                expected=digest,
                data=data,
                labels=labels,
            )
            for _ in self.content.Write(iter([req]), metadata=self.list_md, timeout=60):
                pass

        with ThreadPoolExecutor(INGEST_THREADS) as pool:
            for _ in pool.map(one, blobs):
                pass

    def list_decoded(self) -> int:
        req = W.ListContentRequest()
        return sum(len(r.info) for r in self.content.List(req, metadata=self.list_md))

    def list_raw(self) -> int:
        """All of ``Content.List``'s batches as undecoded protobuf bytes; their length."""
        stream = self.list_raw_call(W.ListContentRequest(), metadata=self.list_md)
        return sum(len(b) for b in stream)


if __name__ == "__main__":
    sys.exit(_content_worker.main("_content_containerd.py", ContainerdDriver))
