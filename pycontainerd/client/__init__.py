"""The Python client library (blocking, imports no Trio).

The Trio client is :class:`pycontainerd.wire.AsyncClient`.
"""

from ._sync import Client as Client
from ._sync import Namespaces as Namespaces
