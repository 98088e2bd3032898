"""The Python client library (blocking, imports no Trio).

The Trio client is :class:`pycontainerd.wire.AsyncClient`.
"""

from . import cio as cio
from ._container import Container as Container
from ._containers import Containers as Containers
from ._content import Content as Content
from ._content import Leases as Leases
from ._content import RemoteWriter as RemoteWriter
from ._images import Images as Images
from ._snapshots import Snapshots as Snapshots
from ._sync import Client as Client
from ._sync import Namespaces as Namespaces
from ._tasks import ExitStatus as ExitStatus
from ._tasks import Process as Process
from ._tasks import Task as Task
from ._transfer import Image as Image
