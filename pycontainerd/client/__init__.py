"""The Python client library (blocking, imports no Trio).

The Trio client is :class:`pycontainerd.wire.AsyncClient`.

Only :class:`Client` and :class:`Namespaces` are imported with the package;
the other names (``cio``, ``Image``, ``Container``, ``Task``...) are imported
on first use, so that ``from pycontainerd.client import Client`` (and a cold
``pyctr version``) loads no image, snapshot, transfer or container code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._sync import Client as Client
from ._sync import Namespaces as Namespaces

if TYPE_CHECKING:
    from . import cio as cio
    from ._container import Container as Container
    from ._containers import Containers as Containers
    from ._content import Content as Content
    from ._content import Leases as Leases
    from ._content import RemoteWriter as RemoteWriter
    from ._images import Images as Images
    from ._snapshots import Snapshots as Snapshots
    from ._tasks import ExitStatus as ExitStatus
    from ._tasks import Process as Process
    from ._tasks import Task as Task
    from ._transfer import Image as Image

_LAZY = {
    "Container": "._container",
    "Containers": "._containers",
    "Content": "._content",
    "Leases": "._content",
    "RemoteWriter": "._content",
    "Images": "._images",
    "Snapshots": "._snapshots",
    "ExitStatus": "._tasks",
    "Process": "._tasks",
    "Task": "._tasks",
    "Image": "._transfer",
}


def __getattr__(name: str) -> Any:
    import importlib

    if name in ("cio", "aio"):
        return importlib.import_module(f".{name}", __name__)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)


def __dir__() -> list[str]:
    return sorted([*globals(), "aio", "cio", *_LAZY])
