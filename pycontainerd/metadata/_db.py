"""The metadata database: a :class:`pycontainerd.sqlite.Database` at the
metadata schema (``_schema.MIGRATIONS``), whose transactions publish the
journal's :class:`~pycontainerd.metadata.events.EventRecord` s."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Self

from pycontainerd import sqlite
from pycontainerd.sqlite import Queryable as Queryable
from pycontainerd.sqlite import Reader as Reader
from pycontainerd.sqlite import domain_error as domain_error
from pycontainerd.sqlite import store_errors as store_errors

from . import _schema
from .events import EventRecord, Transaction

__all__ = [
    "Database",
    "Queryable",
    "Reader",
    "Transaction",
    "domain_error",
    "store_errors",
]


class Database(sqlite.Database[EventRecord]):
    """The metadata database; open it with :meth:`Database.open`.

    Not thread-safe: one owner (the metadata actor) serialises every call, and
    may hand the whole database to one worker thread at a time.
    """

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = sqlite.BUSY_TIMEOUT,
        migrations: Sequence[sqlite.Migration] = _schema.MIGRATIONS,
    ) -> Self:
        """Open (creating it and its parent directories if needed) and migrate
        to the metadata schema (see :meth:`pycontainerd.sqlite.Database.open`)."""
        return super().open(path, busy_timeout=busy_timeout, migrations=migrations)
