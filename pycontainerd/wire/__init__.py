"""msgpack-RPC: the sans-IO codec, the Trio server, and the clients.

The server and the async client are imported lazily, so that the blocking
:class:`Client` (and ``pyctr``) never import Trio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._client import DEFAULT_ADDRESS as DEFAULT_ADDRESS
from ._client import Client as Client
from ._client import ConnectionLost as ConnectionLost
from ._client import PendingCall as PendingCall
from ._codec import Decoder as Decoder
from ._codec import Encoder as Encoder
from ._codec import ProtocolError as ProtocolError

if TYPE_CHECKING:
    from ._async_client import AsyncClient as AsyncClient
    from ._server import Limits as Limits
    from ._server import RpcServer as RpcServer
    from ._server import open_unix_listener as open_unix_listener
    from ._server import serve_rpc as serve_rpc

_LAZY = {
    "AsyncClient": "._async_client",
    "Limits": "._server",
    "RpcServer": "._server",
    "open_unix_listener": "._server",
    "serve_rpc": "._server",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(module, __name__), name)
