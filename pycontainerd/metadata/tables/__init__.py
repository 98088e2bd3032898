"""The metadata tables, one module each: plain functions over a
:class:`~pycontainerd.metadata.Transaction` (writes) or a
:class:`~pycontainerd.metadata.Queryable` (reads), each write journalling its
event::

    from pycontainerd.metadata import tables

    with db.transaction() as tx:
        tables.namespaces.create(tx, "team-a", {"owner": "ops"})
        tables.images.create(tx, "team-a", record)
"""

from __future__ import annotations

from . import containers as containers
from . import content as content
from . import images as images
from . import leases as leases
from . import namespaces as namespaces
from . import snapshots as snapshots
