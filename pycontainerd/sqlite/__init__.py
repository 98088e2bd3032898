"""The sqlite layer the stores stand on: one connection, explicit transactions,
numbered migrations run at open, sqlite's failures as domain errors.

Below both the metadata store and the snapshotters' metastore, so neither
imports the other for it::

    db = Database.open(path, migrations=MIGRATIONS)
    with db.transaction() as tx:
        tx.execute("INSERT INTO snapshots ...", (...))
"""

from __future__ import annotations

from ._database import BUSY_TIMEOUT as BUSY_TIMEOUT
from ._database import FILE_MODE as FILE_MODE
from ._database import Database as Database
from ._database import Params as Params
from ._database import Queryable as Queryable
from ._database import Reader as Reader
from ._database import Transaction as Transaction
from ._database import domain_error as domain_error
from ._database import store_errors as store_errors
from ._migration import Migration as Migration
from ._migration import check_migrations as check_migrations
from ._migration import pending as pending
