"""Schema migrations: numbered steps that bring a database from one ``PRAGMA
user_version`` to the next (what :meth:`Database.open` runs, each store
passing its own list)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

import attrs

from pycontainerd.api import errdefs


@attrs.frozen(kw_only=True)
class Migration:
    """One step of the schema: ``apply`` brings version ``version - 1`` to ``version``."""

    version: int
    description: str
    apply: Callable[[sqlite3.Cursor], None]


def pending(current: int, migrations: Sequence[Migration]) -> list[Migration]:
    """The migrations to run on a database at schema version ``current``.

    Raises:
        errdefs.FailedPrecondition: the database is newer than ``migrations``
            know (written by a newer release).
    """
    known = migrations[-1].version if migrations else 0
    if current > known:
        raise errdefs.FailedPrecondition(
            f"metadata database is at schema version {current}, newer than the "
            f"version {known} this pycontainerd knows: it was written by a "
            "newer release; run that release (or restore a backup), downgrades are "
            "not supported"
        )
    return [m for m in migrations if m.version > current]


def check_migrations(migrations: Sequence[Migration]) -> None:
    """Check that ``migrations`` are numbered 1, 2, ... without gaps.

    Raises:
        errdefs.Internal: the list is out of order (a programming error).
    """
    for index, migration in enumerate(migrations, start=1):
        if migration.version != index:
            raise errdefs.Internal(
                f"migration {migration.description!r} has version {migration.version}, "
                f"expected {index}"
            )
