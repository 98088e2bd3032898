from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pycontainerd.api import errdefs
from pycontainerd.metadata import SCHEMA_VERSION, Database, events
from pycontainerd.metadata.tables import namespaces
from pycontainerd.sqlite import Migration


def _open(tmp_path: Path) -> Database:
    return Database.open(tmp_path / "meta.db")


def _tables(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " ORDER BY name"
        ).fetchall()
    finally:
        conn.close()
    return [r[0] for r in rows]


ALL_TABLES = [
    "containers",
    "content_blobs",
    "content_ingests",
    "events",
    "images",
    "journal_meta",
    "lease_resources",
    "leases",
    "namespaces",
    "snapshot_sequences",
    "snapshots",
]


def _user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()
    return version


def test_open_creates_parent_directories_and_the_current_schema(tmp_path: Path) -> None:
    path = tmp_path / "root" / "io.containerd.metadata.v1.sqlite" / "meta.db"
    db = Database.open(path)
    try:
        assert path.is_file()
        assert db.path == path
        assert db.schema_version == SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert db.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
        assert repr(db) == f"<Database path={str(path)!r}>"
    finally:
        db.close()
    assert _tables(path) == ALL_TABLES
    assert _user_version(path) == SCHEMA_VERSION


def test_reopen_keeps_data_and_does_not_rerun_migrations(tmp_path: Path) -> None:
    db = _open(tmp_path)
    with db.transaction() as tx:
        namespaces.create(tx, "kept", {"a": "b"})
        events.publish(tx, "kept", "/test/one", {})
    with db.transaction() as tx:
        assert events.trim(tx, max_age=None, max_events=1) == 1
    db.close()

    db = _open(tmp_path)
    try:
        assert db.schema_version == SCHEMA_VERSION
        assert namespaces.get(db, "kept").labels == {"a": "b"}
        # journal_meta was not re-seeded by a second run of migration 1
        assert events.trim_point(db) == 1
        assert db.execute("SELECT COUNT(*) FROM journal_meta").fetchone()[0] == 2
    finally:
        db.close()


def test_open_refuses_a_database_newer_than_the_code(tmp_path: Path) -> None:
    path = tmp_path / "meta.db"
    Database.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()

    with pytest.raises(errdefs.FailedPrecondition) as exc_info:
        Database.open(path)
    message = str(exc_info.value)
    assert f"schema version {SCHEMA_VERSION + 1}" in message
    assert f"version {SCHEMA_VERSION} this pycontainerd knows" in message
    assert "downgrades are not supported" in message
    assert _user_version(path) == SCHEMA_VERSION + 1


def test_open_migrates_an_empty_file_from_version_zero(tmp_path: Path) -> None:
    path = tmp_path / "meta.db"
    sqlite3.connect(path).close()
    assert _user_version(path) == 0
    Database.open(path).close()
    assert _user_version(path) == SCHEMA_VERSION
    assert _tables(path) == ALL_TABLES


def _step_one(cur: sqlite3.Cursor) -> None:
    cur.execute("CREATE TABLE log (step INTEGER NOT NULL)")
    cur.execute("INSERT INTO log VALUES (1)")


def _step_two(cur: sqlite3.Cursor) -> None:
    cur.execute("CREATE TABLE two (x INTEGER)")
    cur.execute("INSERT INTO log VALUES (2)")


def _step_three_fails(cur: sqlite3.Cursor) -> None:
    cur.execute("INSERT INTO log VALUES (3)")
    raise errdefs.DataLoss("step three is broken")


ONE = Migration(version=1, description="one", apply=_step_one)
TWO = Migration(version=2, description="two", apply=_step_two)
THREE = Migration(version=3, description="three", apply=_step_three_fails)


def _log(path: Path) -> list[int]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute("SELECT step FROM log ORDER BY rowid")]
    finally:
        conn.close()


def test_reopen_runs_only_the_appended_migrations(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    db = Database.open(path, migrations=(ONE,))
    assert db.schema_version == 1
    db.close()
    db = Database.open(path, migrations=(ONE, TWO))
    assert db.schema_version == 2
    db.close()
    Database.open(path, migrations=(ONE, TWO)).close()
    assert _log(path) == [1, 2]
    assert _tables(path) == ["log", "two"]


def test_a_failing_migration_leaves_the_file_at_its_old_version(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    Database.open(path, migrations=(ONE,)).close()
    with pytest.raises(errdefs.DataLoss, match="step three is broken"):
        Database.open(path, migrations=(ONE, TWO, THREE))
    # TWO ran in the same transaction as THREE, so it is gone too
    assert _user_version(path) == 1
    assert _tables(path) == ["log"]
    assert _log(path) == [1]


def test_open_rejects_misnumbered_migrations(tmp_path: Path) -> None:
    with pytest.raises(errdefs.Internal, match="'two' has version 2, expected 1"):
        Database.open(tmp_path / "other.db", migrations=(TWO,))


def test_transaction_commits_and_hands_out_published_records(tmp_path: Path) -> None:
    db = _open(tmp_path)
    with db.transaction() as tx:
        namespaces.create(tx, "a", {})
        events.publish(tx, "a", "/test/x", {"k": 1})
        assert db.in_transaction
    assert not db.in_transaction
    assert [(r.sequence, r.topic) for r in tx.published] == [
        (1, "/namespaces/create"),
        (2, "/test/x"),
    ]
    assert [r.sequence for r in events.read_after(db, 0, 10)] == [1, 2]
    db.close()


def test_transaction_rollback_leaves_no_namespace_and_no_event(tmp_path: Path) -> None:
    db = _open(tmp_path)
    with pytest.raises(ValueError, match="boom"), db.transaction() as tx:
        namespaces.create(tx, "ghost", {"a": "b"})
        events.publish(tx, "ghost", "/test/x", {})
        assert len(tx.published) == 2
        raise ValueError("boom")
    assert tx.published == []
    assert not db.in_transaction
    with pytest.raises(errdefs.NotFound):
        namespaces.get(db, "ghost")
    assert namespaces.list(db) == []
    assert events.head(db) == 0
    assert events.read_after(db, 0, 10) == []
    db.close()


def test_domain_error_in_a_transaction_rolls_back_earlier_writes(tmp_path: Path) -> None:
    db = _open(tmp_path)
    with pytest.raises(errdefs.AlreadyExists), db.transaction() as tx:
        namespaces.create(tx, "twice", {})
        namespaces.create(tx, "twice", {})
    assert namespaces.list(db) == []
    assert events.head(db) == 0
    db.close()


def test_transactions_do_not_nest(tmp_path: Path) -> None:
    db = _open(tmp_path)
    with db.transaction() as tx:
        namespaces.create(tx, "outer", {})
        with pytest.raises(RuntimeError, match="already open"), db.transaction():
            pass
    assert [n.name for n in namespaces.list(db)] == ["outer"]
    db.close()


def test_transaction_and_reader_are_unusable_after_their_block(tmp_path: Path) -> None:
    db = _open(tmp_path)
    with db.transaction() as tx:
        pass
    with pytest.raises(RuntimeError, match="after its block ended"):
        tx.execute("SELECT 1")
    with db.read() as r:
        assert r.execute("SELECT 1").fetchone() == (1,)
    with pytest.raises(RuntimeError, match="after its block ended"):
        r.execute("SELECT 1")
    with pytest.raises(RuntimeError, match="after its block ended"):
        _ = r.cursor
    db.close()


def test_read_sees_one_snapshot_while_another_connection_commits(tmp_path: Path) -> None:
    db = _open(tmp_path)
    other = _open(tmp_path)
    with db.read() as r:
        assert namespaces.list(r) == []
        with other.transaction() as tx:
            namespaces.create(tx, "late", {})
        assert namespaces.list(r) == []
    assert [n.name for n in namespaces.list(db)] == ["late"]
    other.close()
    db.close()


def test_read_inside_a_transaction_sees_its_uncommitted_writes(tmp_path: Path) -> None:
    db = _open(tmp_path)
    with db.transaction() as tx:
        namespaces.create(tx, "pending", {})
        with db.read() as r:
            assert namespaces.get(r, "pending").name == "pending"
        assert db.in_transaction
    assert namespaces.get(db, "pending").name == "pending"
    db.close()


def test_a_write_lock_held_elsewhere_past_the_busy_timeout_is_unavailable(
    tmp_path: Path,
) -> None:
    path = tmp_path / "meta.db"
    db = Database.open(path, busy_timeout=0.05)
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] == 50
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with (
            pytest.raises(errdefs.Unavailable, match="locked by another process"),
            db.transaction() as tx,
        ):
            namespaces.create(tx, "blocked", {})
        assert not db.in_transaction
        # reads go on in WAL mode while another connection writes
        assert namespaces.list(db) == []
    finally:
        other.execute("ROLLBACK")
        other.close()
    with db.transaction() as tx:
        namespaces.create(tx, "unblocked", {})
    assert [n.name for n in namespaces.list(db)] == ["unblocked"]
    db.close()


def test_reopen_of_a_current_database_needs_no_write_lock(tmp_path: Path) -> None:
    path = tmp_path / "meta.db"
    Database.open(path).close()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        db = Database.open(path, busy_timeout=0.05)
        assert db.schema_version == SCHEMA_VERSION
        db.close()
    finally:
        other.execute("ROLLBACK")
        other.close()


_CHILD = textwrap.dedent(
    """
    import sys, time
    from pycontainerd.metadata import Database, events
    from pycontainerd.metadata.tables import namespaces

    db = Database.open(sys.argv[1])
    with db.transaction() as tx:
        namespaces.create(tx, "durable", {"k": "v"})
        events.publish(tx, "durable", "/test/committed", {"n": 1})
    tx = db.transaction()
    open_tx = tx.__enter__()
    namespaces.create(open_tx, "uncommitted", {})
    print("ready", flush=True)
    time.sleep(60)
    """
)


def test_committed_rows_survive_sigkill_of_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "meta.db"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
    finally:
        child.kill()  # SIGKILL: no atexit, no close, no checkpoint
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -9

    db = Database.open(path)
    try:
        assert namespaces.get(db, "durable").labels == {"k": "v"}
        with pytest.raises(errdefs.NotFound):
            namespaces.get(db, "uncommitted")
        assert [(r.sequence, r.topic) for r in events.read_after(db, 0, 10)] == [
            (1, "/namespaces/create"),
            (2, "/test/committed"),
        ]
        assert events.head(db) == 2
    finally:
        db.close()
