"""One benchmark client process against pycontainerd, over its msgpack-RPC socket.

Runs under the project venv with the blocking client ``pycontainerd.wire.Client``
(one persistent connection per process). The load loop and the output are
``_worker``'s, shared with ``_containerd_client.py``.

    .venv/bin/python bench/_pycontainerd_client.py --address SOCK latency
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import _worker

from pycontainerd.wire import Client


def connect(address: str) -> tuple[_worker.Calls, object]:
    """Open one connection to pycontainerd and describe the benchmarked methods.

    Args:
        address: pycontainerd's Unix socket.

    Returns:
        The callables by method name, and the daemon's ``version.version`` reply.
    """
    client = Client(address)

    def version() -> object:
        return client.call("version.version", {})

    def namespaces_list() -> object:
        return client.call("namespaces.list", {})

    calls: dict[str, Callable[[], object]] = {
        "version": version,
        "namespaces_list": namespaces_list,
    }
    return calls, version()


if __name__ == "__main__":
    sys.exit(_worker.main("_pycontainerd_client.py", connect))
