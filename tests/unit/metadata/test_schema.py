from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from pycontainerd import sqlite
from pycontainerd.api import errdefs
from pycontainerd.metadata import Database, _schema


def test_migrations_are_numbered_from_one_without_gaps() -> None:
    assert [m.version for m in _schema.MIGRATIONS] == list(range(1, _schema.SCHEMA_VERSION + 1))
    sqlite.check_migrations(_schema.MIGRATIONS)


def test_pending_lists_what_a_version_still_needs() -> None:
    assert sqlite.pending(0, _schema.MIGRATIONS) == list(_schema.MIGRATIONS)
    assert sqlite.pending(_schema.SCHEMA_VERSION, _schema.MIGRATIONS) == []


def test_pending_refuses_a_newer_version() -> None:
    with pytest.raises(errdefs.FailedPrecondition, match="newer than the version"):
        sqlite.pending(_schema.SCHEMA_VERSION + 1, _schema.MIGRATIONS)


def test_the_header_diagram_draws_every_table(tmp_path: Path) -> None:
    db = Database.open(tmp_path / "meta.db")
    try:
        rows = db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
        tables = {r[0] for r in rows}
        doc = _schema.__doc__ or ""
        drawn = set(re.findall(r"^    (\w+)\s+\(v\d+\)", doc, flags=re.MULTILINE))
        assert drawn == tables
        for table in tables:
            columns = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
            for column in columns:
                assert re.search(rf"[├└]─ {column}\b", doc), (table, column)
    finally:
        db.close()


def test_micros_round_trip_exactly() -> None:
    when = datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC)
    micros = _schema.to_micros(when)
    assert micros == 1709251199999999
    assert _schema.from_micros(micros) == when
    assert _schema.from_micros(micros).tzinfo is UTC
    assert _schema.to_micros(_schema.EPOCH) == 0


def test_to_micros_takes_naive_as_utc_and_converts_other_zones() -> None:
    naive = datetime(2000, 1, 1, 0, 0, 0)
    aware = datetime(2000, 1, 1, 0, 0, 0, tzinfo=UTC)
    plus_two = datetime(2000, 1, 1, 2, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    assert _schema.to_micros(naive) == _schema.to_micros(aware) == 946684800_000000
    assert _schema.to_micros(plus_two) == 946684800_000000


def test_labels_round_trip() -> None:
    labels = {"containerd.io/gc.root": "2024", "ü": "ß", "empty": ""}
    assert _schema.unpack_labels(_schema.pack_labels(labels)) == labels


def test_event_payload_round_trips_datetimes_bytes_and_nesting() -> None:
    exited = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    event = {
        "container_id": "c1",
        "pid": 4242,
        "exit_status": 137,
        "exited_at": exited,
        "blob": b"\x00\xff",
        "io": {"stdin": "", "terminal": False},
        "list": [1, "two", None],
    }
    assert _schema.unpack_event(_schema.pack_event(event)) == event


def test_event_payload_that_msgpack_cannot_carry_is_invalid_argument() -> None:
    with pytest.raises(errdefs.InvalidArgument, match="event: cannot be encoded"):
        _schema.pack_event({"when": datetime(2024, 1, 1)})
    with pytest.raises(errdefs.InvalidArgument, match="event: cannot be encoded"):
        _schema.pack_event({"obj": object()})


def test_quote_prints_like_go_percent_q() -> None:
    assert _schema.quote("x") == '"x"'
    assert _schema.quote('a"b') == '"a\\"b"'
    assert _schema.quote("") == '""'
