"""One benchmark client process against Debian's containerd, over its gRPC socket.

Runs under the separate venv made by ``_peers.grpc_python()`` (``containerd``
stubs from PyPI, ``grpcio``, ``protobuf<3.21``), never under the project venv.
One persistent channel per process, as a node agent holds; the load loop and the
output are ``_worker``'s, shared with ``_pycontainerd_client.py``.

    bench/.venv-grpc/bin/python bench/_containerd_client.py --address SOCK latency
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import _worker
import grpc
from containerd.services.namespaces.v1 import namespace_pb2, namespace_pb2_grpc
from containerd.services.version.v1 import version_pb2_grpc
from google.protobuf import empty_pb2

# Channel options as containerd's Go client sets them (16 MiB messages).
_OPTIONS = [
    ("grpc.max_receive_message_length", 16 << 20),
    ("grpc.max_send_message_length", 16 << 20),
]


def connect(address: str) -> tuple[_worker.Calls, object]:
    """Open one channel to containerd and describe the benchmarked methods.

    Args:
        address: containerd's gRPC Unix socket.

    Returns:
        The callables by method name, and containerd's Version reply as a map.
    """
    channel: Any = grpc.insecure_channel(f"unix://{address}", options=_OPTIONS)
    grpc.channel_ready_future(channel).result(timeout=10)
    version_stub: Any = version_pb2_grpc.VersionStub(channel)
    namespaces_stub: Any = namespace_pb2_grpc.NamespacesStub(channel)
    empty = empty_pb2.Empty()
    list_request = namespace_pb2.ListNamespacesRequest()

    def version() -> object:
        return version_stub.Version(empty)

    def namespaces_list() -> object:
        return namespaces_stub.List(list_request)

    calls: dict[str, Callable[[], object]] = {
        "version": version,
        "namespaces_list": namespaces_list,
    }
    reply: Any = version_stub.Version(empty)
    server = {"version": str(reply.version), "revision": str(reply.revision)}
    return calls, server


if __name__ == "__main__":
    sys.exit(_worker.main("_containerd_client.py", connect))
