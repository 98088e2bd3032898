"""The sqlite-backed metadata store: namespaces, the event journal, content
ownership, snapshot ownership (:class:`NamespacedSnapshotter`), images,
containers, leases and garbage collection.

A plain synchronous store: the daemon's metadata actor owns one
:class:`Database`, is its sole writer, and calls the functions of
:mod:`~pycontainerd.metadata.tables` (one module per table) inline::

    db = Database.open(root / "io.containerd.metadata.v1.sqlite" / "meta.db")
    with db.transaction() as tx:
        tables.namespaces.create(tx, "team-a", {})  # journals /namespaces/create
    exchange.deliver(tx.published)                  # live fan-out after commit
    events.read_after(db, since=0, limit=100)       # replay from the journal
"""

from __future__ import annotations

from . import events as events
from . import gc as gc
from . import tables as tables
from ._content_store import ContentStore as ContentStore
from ._content_store import DirectRunner as DirectRunner
from ._content_store import NamespacedWriter as NamespacedWriter
from ._content_store import Runner as Runner
from ._content_store import collect_garbage as collect_garbage
from ._db import Database as Database
from ._db import Queryable as Queryable
from ._db import Reader as Reader
from ._db import Transaction as Transaction
from ._db import domain_error as domain_error
from ._db import store_errors as store_errors
from ._schema import SCHEMA_VERSION as SCHEMA_VERSION
from ._snapshot_store import NamespacedSnapshotter as NamespacedSnapshotter
from ._snapshot_store import collect_snapshots as collect_snapshots
from ._snapshot_store import inherited_labels as inherited_labels
from ._snapshot_store import repair_snapshots as repair_snapshots
from .events import EventRecord as EventRecord
from .gc import GcResult as GcResult
from .tables.namespaces import NamespaceCheck as NamespaceCheck
from .tables.namespaces import NamespaceRecord as NamespaceRecord
