from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pycontainerd.api import errdefs
from pycontainerd.metadata import Database, EventRecord, events
from pycontainerd.metadata.tables import namespaces


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    db = Database.open(tmp_path / "meta.db")
    yield db
    db.close()


def _journal(db: Database) -> list[tuple[str, str, dict[str, object]]]:
    return [(r.namespace, r.topic, r.event) for r in events.read_after(db, 0, 100)]


def test_create_get_and_list(db: Database) -> None:
    before = datetime.now(UTC)
    with db.transaction() as tx:
        created = namespaces.create(tx, "b-team", {"owner": "ops"})
        namespaces.create(tx, "a.team", {})
    assert created.name == "b-team"
    assert created.labels == {"owner": "ops"}
    assert created.created_at == created.updated_at
    assert created.created_at >= before
    assert created.created_at.tzinfo is UTC

    got = namespaces.get(db, "b-team")
    assert got == created
    assert [n.name for n in namespaces.list(db)] == ["a.team", "b-team"]
    assert namespaces.list(db)[1] == created


def test_get_works_inside_the_writing_transaction(db: Database) -> None:
    with db.transaction() as tx:
        namespaces.create(tx, "fresh", {"x": "y"})
        assert namespaces.get(tx, "fresh").labels == {"x": "y"}


def test_create_publishes_namespaces_create_in_the_same_transaction(db: Database) -> None:
    with db.transaction() as tx:
        namespaces.create(tx, "evns", {"a": "b"})
    assert [(r.namespace, r.topic, r.event) for r in tx.published] == [
        ("evns", "/namespaces/create", {"name": "evns", "labels": {"a": "b"}})
    ]
    assert _journal(db) == [("evns", "/namespaces/create", {"name": "evns", "labels": {"a": "b"}})]


def test_create_twice_is_already_exists(db: Database) -> None:
    with db.transaction() as tx:
        namespaces.create(tx, "dup", {"first": "1"})
    with pytest.raises(errdefs.AlreadyExists) as exc_info, db.transaction() as tx:
        namespaces.create(tx, "dup", {"second": "2"})
    assert str(exc_info.value) == 'namespace "dup": already exists'
    assert namespaces.get(db, "dup").labels == {"first": "1"}
    assert events.head(db) == 1


@pytest.mark.parametrize("name", ["", "-a", "a-", "a..b", "a/b", "a b", "a:b", "x" * 77])
def test_create_rejects_names_that_are_not_identifiers(db: Database, name: str) -> None:
    with pytest.raises(errdefs.InvalidArgument), db.transaction() as tx:
        namespaces.create(tx, name, {})
    assert namespaces.list(db) == []


def test_create_rejects_a_label_over_4096_bytes(db: Database) -> None:
    with (
        pytest.raises(errdefs.InvalidArgument, match=r"^namespace\.labels: "),
        db.transaction() as tx,
    ):
        namespaces.create(tx, "big", {"k": "v" * 4096})
    assert namespaces.list(db) == []


def test_create_accepts_a_label_of_exactly_4096_bytes(db: Database) -> None:
    with db.transaction() as tx:
        namespaces.create(tx, "edge", {"k": "v" * 4095})
    assert namespaces.get(db, "edge").labels == {"k": "v" * 4095}


def test_get_unknown_is_not_found(db: Database) -> None:
    with pytest.raises(errdefs.NotFound) as exc_info:
        namespaces.get(db, "nope")
    assert str(exc_info.value) == 'namespace "nope": not found'


def test_update_without_mask_replaces_every_label(db: Database) -> None:
    with db.transaction() as tx:
        created = namespaces.create(tx, "ns", {"a": "1", "b": "2"})
    with db.transaction() as tx:
        updated = namespaces.update(tx, "ns", {"b": "20", "c": "3", "gone": ""}, None)
    assert updated.labels == {"b": "20", "c": "3"}
    assert updated.created_at == created.created_at
    assert updated.updated_at >= created.updated_at
    assert namespaces.get(db, "ns") == updated
    with db.transaction() as tx:
        assert namespaces.update(tx, "ns", {"only": "x"}, []).labels == {"only": "x"}


def test_update_with_mask_touches_only_the_named_keys(db: Database) -> None:
    with db.transaction() as tx:
        namespaces.create(tx, "ns", {"a": "1", "b": "2", "c": "3", "d": "4"})
    with db.transaction() as tx:
        updated = namespaces.update(
            tx,
            "ns",
            {"a": "10", "b": "", "e": "5", "ignored": "x", "dotted.key/x": "y"},
            ["labels.a", "labels.b", "labels.c", "labels.e", "labels.dotted.key/x"],
        )
    # b: empty value deletes; c: absent from the request deletes; d: not in the mask, kept
    assert updated.labels == {"a": "10", "d": "4", "e": "5", "dotted.key/x": "y"}
    assert namespaces.get(db, "ns").labels == updated.labels


def test_update_publishes_the_resulting_labels(db: Database) -> None:
    with db.transaction() as tx:
        namespaces.create(tx, "ns", {"a": "1"})
    with db.transaction() as tx:
        namespaces.update(tx, "ns", {"b": "2"}, ["labels.b"])
    assert [(r.namespace, r.topic, r.event) for r in tx.published] == [
        ("ns", "/namespaces/update", {"name": "ns", "labels": {"a": "1", "b": "2"}})
    ]


@pytest.mark.parametrize("path", ["name", "labels", "labels.", "Labels.a", "annotations.a"])
def test_update_rejects_paths_other_than_labels_key(db: Database, path: str) -> None:
    with db.transaction() as tx:
        namespaces.create(tx, "ns", {"a": "1"})
    with pytest.raises(errdefs.InvalidArgument, match="cannot update"), db.transaction() as tx:
        namespaces.update(tx, "ns", {"a": "2"}, ["labels.a", path])
    assert namespaces.get(db, "ns").labels == {"a": "1"}
    assert events.head(db) == 1


def test_update_rejects_an_oversized_label(db: Database) -> None:
    with db.transaction() as tx:
        namespaces.create(tx, "ns", {})
    with pytest.raises(errdefs.InvalidArgument), db.transaction() as tx:
        namespaces.update(tx, "ns", {"k": "v" * 5000}, ["labels.k"])
    assert namespaces.get(db, "ns").labels == {}


def test_update_unknown_is_not_found(db: Database) -> None:
    with (
        pytest.raises(errdefs.NotFound, match='namespace "nope": not found'),
        db.transaction() as tx,
    ):
        namespaces.update(tx, "nope", {"a": "1"}, None)
    assert namespaces.list(db) == []


def test_delete_removes_and_publishes(db: Database) -> None:
    with db.transaction() as tx:
        namespaces.create(tx, "bye", {"a": "1"})
    with db.transaction() as tx:
        namespaces.delete(tx, "bye")
    assert [(r.namespace, r.topic, r.event) for r in tx.published] == [
        ("bye", "/namespaces/delete", {"name": "bye"})
    ]
    with pytest.raises(errdefs.NotFound):
        namespaces.get(db, "bye")


def test_delete_unknown_is_not_found(db: Database) -> None:
    with pytest.raises(errdefs.NotFound) as exc_info, db.transaction() as tx:
        namespaces.delete(tx, "nope")
    assert str(exc_info.value) == 'namespace "nope": not found'


def _widgets(db: Database) -> None:
    with db.transaction() as tx:
        tx.execute(
            "CREATE TABLE widgets (namespace TEXT NOT NULL REFERENCES namespaces (name), id TEXT)"
        )
        tx.execute("CREATE TABLE gadgets (namespace TEXT NOT NULL, id TEXT)")


def _has(table: str) -> namespaces.NamespaceCheck:
    def check(cur: sqlite3.Cursor, ns: str) -> bool:
        return (
            cur.execute(f"SELECT 1 FROM {table} WHERE namespace = ?", (ns,)).fetchone() is not None
        )

    return check


def test_delete_of_a_namespace_in_use_names_every_kind_still_held(db: Database) -> None:
    _widgets(db)
    with db.transaction() as tx:
        namespaces.create(tx, "busy", {})
        tx.execute("INSERT INTO widgets VALUES ('busy', 'w1')")
        tx.execute("INSERT INTO gadgets VALUES ('busy', 'g1')")
    namespaces.register_namespace_user("widgets", _has("widgets"))
    namespaces.register_namespace_user("gadgets", _has("gadgets"))
    try:
        assert namespaces.namespace_users()[-2:] == ["widgets", "gadgets"]
        with pytest.raises(errdefs.FailedPrecondition) as exc_info, db.transaction() as tx:
            namespaces.delete(tx, "busy")
        assert (
            str(exc_info.value)
            == 'namespace "busy" must be empty, but it still has widgets, gadgets'
        )

        with db.transaction() as tx:
            tx.execute("DELETE FROM widgets")
        with pytest.raises(errdefs.FailedPrecondition) as exc_info, db.transaction() as tx:
            namespaces.delete(tx, "busy")
        assert str(exc_info.value) == 'namespace "busy" must be empty, but it still has gadgets'

        with db.transaction() as tx:
            tx.execute("DELETE FROM gadgets")
        with db.transaction() as tx:
            namespaces.delete(tx, "busy")
        assert namespaces.list(db) == []
    finally:
        namespaces.unregister_namespace_user("widgets")
        namespaces.unregister_namespace_user("gadgets")
    assert "widgets" not in namespaces.namespace_users()
    assert "gadgets" not in namespaces.namespace_users()


def test_delete_referenced_by_a_table_without_a_check_is_failed_precondition(
    db: Database,
) -> None:
    _widgets(db)
    with db.transaction() as tx:
        namespaces.create(tx, "held", {})
        tx.execute("INSERT INTO widgets VALUES ('held', 'w1')")
    with (
        pytest.raises(errdefs.FailedPrecondition, match="still referenced"),
        db.transaction() as tx,
    ):
        namespaces.delete(tx, "held")
    assert namespaces.get(db, "held").name == "held"
    assert [r.topic for r in events.read_after(db, 0, 10)] == ["/namespaces/create"]


def test_ensure_creates_once_and_publishes_once(db: Database) -> None:
    with db.transaction() as tx:
        assert namespaces.ensure(tx, "implicit") is True
        assert namespaces.ensure(tx, "implicit") is False
    with db.transaction() as tx:
        assert namespaces.ensure(tx, "implicit") is False
    assert tx.published == []
    assert namespaces.get(db, "implicit").labels == {}
    assert _journal(db) == [("implicit", "/namespaces/create", {"name": "implicit", "labels": {}})]


def test_ensure_keeps_an_existing_namespace_untouched(db: Database) -> None:
    with db.transaction() as tx:
        created = namespaces.create(tx, "there", {"a": "1"})
    with db.transaction() as tx:
        assert namespaces.ensure(tx, "there") is False
    assert namespaces.get(db, "there") == created


def test_ensure_rejects_a_bad_name(db: Database) -> None:
    with pytest.raises(errdefs.InvalidArgument), db.transaction() as tx:
        namespaces.ensure(tx, "bad name")
    assert namespaces.list(db) == []


def test_crud_events_share_one_increasing_sequence(db: Database) -> None:
    published: list[EventRecord] = []
    with db.transaction() as tx:
        namespaces.create(tx, "life", {})
    published += tx.published
    with db.transaction() as tx:
        namespaces.update(tx, "life", {"a": "1"}, None)
    published += tx.published
    with db.transaction() as tx:
        namespaces.delete(tx, "life")
    published += tx.published
    assert [(r.sequence, r.topic) for r in published] == [
        (1, "/namespaces/create"),
        (2, "/namespaces/update"),
        (3, "/namespaces/delete"),
    ]
