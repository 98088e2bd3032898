"""Store errors become domain errors in one place (``_db.store_errors``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pycontainerd.api import errdefs
from pycontainerd.metadata import Database, domain_error
from pycontainerd.metadata.tables import namespaces


def _open(tmp_path: Path) -> Database:
    return Database.open(tmp_path / "meta.db")


def _cap_pages(db: Database, extra: int) -> None:
    """A database that may grow ``extra`` pages more: SQLITE_FULL, as on a full disk."""
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {int(pages) + extra}")


def test_full_database_is_resource_exhausted_and_rolled_back(tmp_path: Path) -> None:
    db = _open(tmp_path)
    with db.transaction() as tx:
        namespaces.create(tx, "kept", {})
    _cap_pages(db, 2)
    for i in range(3):  # again and again: the connection stays usable
        with (
            pytest.raises(errdefs.ResourceExhausted, match="no space left"),
            db.transaction() as tx,
        ):
            namespaces.create(tx, f"big{i}", {f"k{j}": "v" * 4000 for j in range(50)})
        assert not db.in_transaction
    assert [n.name for n in namespaces.list(db)] == ["kept"]
    db.execute("PRAGMA max_page_count = 1073741823")
    with db.transaction() as tx:
        namespaces.create(tx, "after", {})
    assert [n.name for n in namespaces.list(db)] == ["after", "kept"]
    db.close()


def test_integer_beyond_int64_is_invalid_argument(tmp_path: Path) -> None:
    db = _open(tmp_path)
    with pytest.raises(errdefs.InvalidArgument, match="out of range"), db.transaction() as tx:
        tx.execute("INSERT INTO journal_meta VALUES (?, ?)", ("x", 2**63))
    assert not db.in_transaction
    db.close()


def test_constraints(tmp_path: Path) -> None:
    db = _open(tmp_path)
    with db.transaction() as tx:
        tx.execute("CREATE TABLE t (k TEXT PRIMARY KEY, n TEXT UNIQUE, v INTEGER CHECK (v > 0))")
        tx.execute("INSERT INTO t VALUES ('a', 'x', 1)")
    with pytest.raises(errdefs.AlreadyExists), db.transaction() as tx:
        tx.execute("INSERT INTO t VALUES ('a', 'y', 1)")
    with pytest.raises(errdefs.AlreadyExists), db.transaction() as tx:
        tx.execute("INSERT INTO t VALUES ('b', 'x', 1)")
    with pytest.raises(errdefs.FailedPrecondition), db.transaction() as tx:
        tx.execute("INSERT INTO t VALUES ('c', 'z', 0)")
    assert db.execute("SELECT count(*) FROM t").fetchone()[0] == 1
    db.close()


def test_read_blocks_map_too(tmp_path: Path) -> None:
    db = _open(tmp_path)
    with pytest.raises(errdefs.InvalidArgument), db.read() as r:
        r.execute("SELECT ?", (2**64,))
    db.close()


def test_bugs_are_not_mapped(tmp_path: Path) -> None:
    db = _open(tmp_path)
    with pytest.raises(sqlite3.OperationalError, match="no such table"), db.transaction() as tx:
        tx.execute("SELECT * FROM nowhere")
    with pytest.raises(KeyError), db.transaction():
        raise KeyError("a bug")
    assert domain_error(KeyError("x")) is None
    assert domain_error(sqlite3.ProgrammingError("x")) is None
    db.close()
