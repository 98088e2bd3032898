"""Namespaces: the tenants of one host (containerd ``metadata/namespaces.go``).

A namespace is a name (an identifier, reference §7) with free-form labels.
Content is stored once for the host; everything else — images, containers,
snapshots, leases — belongs to exactly one namespace. As in containerd, the
first object written into a namespace creates it (:func:`ensure`), and a
namespace can only be deleted once it is empty. What "empty" means grows with
the schema: each table that holds namespaced objects registers a check with
:func:`register_namespace_user`, and :func:`delete` names every kind still in
use::

    namespace "team-a" must be empty, but it still has images, containers

Every change publishes containerd's event (``/namespaces/create``,
``/namespaces/update``, ``/namespaces/delete``, with ``{name, labels}`` or
``{name}``) in the same transaction, with the namespace itself as the
envelope's namespace.
"""

from __future__ import annotations

import builtins
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

import attrs

from pycontainerd.api import errdefs, identifiers
from pycontainerd.api import labels as label_rules

from .. import _schema, events
from .._db import Queryable, Transaction
from .._schema import quote

NamespaceCheck = Callable[[sqlite3.Cursor, str], bool]
"""``check(cursor, namespace)``: whether the namespace still holds objects of one kind."""

_USERS: dict[str, NamespaceCheck] = {}
_ORDER = ("images", "blobs", "containers", "snapshots")
"""containerd's order of kinds in the "must be empty" message; others follow."""


@attrs.frozen(kw_only=True)
class NamespaceRecord:
    """A namespace as stored: its name, labels and times (aware, UTC)."""

    name: str
    labels: Mapping[str, str]
    created_at: datetime
    updated_at: datetime


def register_namespace_user(kind: str, check: NamespaceCheck) -> None:
    """Make :func:`delete` refuse namespaces for which ``check`` answers true.

    Args:
        kind: what the check counts, plural, as the error message names it
            (``"images"``, ``"blobs"``, ``"containers"``, ...). Registering a
            kind again replaces its check; kinds are reported in registration
            order.
        check: called with a cursor on the deleting transaction and the
            namespace name.
    """
    _USERS[kind] = check


def unregister_namespace_user(kind: str) -> None:
    """Forget the check registered for ``kind`` (no error if there is none)."""
    _USERS.pop(kind, None)


def namespace_users() -> builtins.list[str]:
    """The kinds with a registered check, in registration order."""
    return builtins.list(_USERS)


def _validate_labels(values: Mapping[str, str]) -> None:
    try:
        label_rules.validate_labels(values)
    except errdefs.InvalidArgument as exc:
        raise errdefs.InvalidArgument(f"namespace.labels: {exc.message}") from None


_SELECT = "SELECT name, labels, created_at, updated_at FROM namespaces"
_GET = _SELECT + " WHERE name = ?"
_LIST = _SELECT + " ORDER BY name"
_INSERT = (
    "INSERT INTO namespaces (name, labels, created_at, updated_at) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (name) DO NOTHING"
)
_UPDATE = "UPDATE namespaces SET labels = ?, updated_at = ? WHERE name = ?"
_DELETE = "DELETE FROM namespaces WHERE name = ?"


def _record(row: tuple[str, bytes, int, int]) -> NamespaceRecord:
    name, packed, created, updated = row
    return NamespaceRecord(
        name=name,
        labels=_schema.unpack_labels(packed),
        created_at=_schema.from_micros(created),
        updated_at=_schema.from_micros(updated),
    )


def _insert(tx: Transaction, name: str, values: Mapping[str, str]) -> NamespaceRecord | None:
    now = datetime.now(UTC)
    micros = _schema.to_micros(now)
    cur = tx.execute(_INSERT, (name, _schema.pack_labels(values), micros, micros))
    if cur.rowcount != 1:
        return None
    events.publish(tx, name, "/namespaces/create", {"name": name, "labels": dict(values)})
    return NamespaceRecord(name=name, labels=dict(values), created_at=now, updated_at=now)


def create(tx: Transaction, name: str, labels: Mapping[str, str]) -> NamespaceRecord:
    """Create a namespace and publish ``/namespaces/create``.

    Raises:
        errdefs.InvalidArgument: ``name`` is not an identifier, or a label
            breaks the label rules.
        errdefs.AlreadyExists: the namespace exists.
    """
    identifiers.validate(name)
    _validate_labels(labels)
    rec = _insert(tx, name, labels)
    if rec is None:
        raise errdefs.AlreadyExists(f"namespace {quote(name)}: already exists")
    return rec


def ensure(tx: Transaction, name: str) -> bool:
    """Create ``name`` with no labels unless it exists: the first write into a namespace.

    Publishes ``/namespaces/create`` only when it creates.

    Returns:
        Whether the namespace was created.

    Raises:
        errdefs.InvalidArgument: ``name`` is not an identifier.
    """
    identifiers.validate(name)
    return _insert(tx, name, {}) is not None


def get(q: Queryable, name: str) -> NamespaceRecord:
    """The namespace called ``name``.

    Raises:
        errdefs.NotFound: there is none.
    """
    row = q.execute(_GET, (name,)).fetchone()
    if row is None:
        raise errdefs.NotFound(f"namespace {quote(name)}: not found")
    return _record(row)


def list(q: Queryable) -> builtins.list[NamespaceRecord]:
    """Every namespace, by name."""
    return [_record(row) for row in q.execute(_LIST)]


def _label_key(path: str) -> str:
    prefix = "labels."
    if not path.startswith(prefix):
        raise errdefs.InvalidArgument(f"cannot update {quote(path)} field: only labels.<key> paths")
    key = path[len(prefix) :]
    if not key:
        raise errdefs.InvalidArgument(f"cannot update {quote(path)} field: empty label key")
    return key


def update(
    tx: Transaction,
    name: str,
    labels: Mapping[str, str],
    paths: Sequence[str] | None,
) -> NamespaceRecord:
    """Update a namespace's labels and publish ``/namespaces/update``.

    containerd's semantics: with ``paths`` (``labels.<key>``, everything after
    the first ``labels.`` is the key, dots allowed) only those keys change, each
    to its value in ``labels``; an empty or missing value deletes the key.
    Without paths (``None`` or empty) every label is replaced by ``labels``,
    whose empty values are dropped.

    Raises:
        errdefs.InvalidArgument: a path other than ``labels.<key>``, or a label
            that breaks the label rules.
        errdefs.NotFound: the namespace does not exist.
    """
    current = get(tx, name)
    if paths:
        merged = dict(current.labels)
        for path in paths:
            key = _label_key(path)
            value = labels.get(key, "")
            if value:
                merged[key] = value
            else:
                merged.pop(key, None)
    else:
        merged = {k: v for k, v in labels.items() if v}
    _validate_labels(merged)
    now = datetime.now(UTC)
    tx.execute(_UPDATE, (_schema.pack_labels(merged), _schema.to_micros(now), name))
    events.publish(tx, name, "/namespaces/update", {"name": name, "labels": dict(merged)})
    return NamespaceRecord(name=name, labels=merged, created_at=current.created_at, updated_at=now)


def delete(tx: Transaction, name: str) -> None:
    """Delete an empty namespace and publish ``/namespaces/delete``.

    Raises:
        errdefs.NotFound: the namespace does not exist.
        errdefs.FailedPrecondition: it still holds objects of a registered kind.
    """
    if tx.execute("SELECT 1 FROM namespaces WHERE name = ?", (name,)).fetchone() is None:
        raise errdefs.NotFound(f"namespace {quote(name)}: not found")
    cur = tx.cursor
    in_use = [kind for kind, check in _USERS.items() if check(cur, name)]
    in_use.sort(key=lambda kind: _ORDER.index(kind) if kind in _ORDER else len(_ORDER))
    if in_use:
        raise errdefs.FailedPrecondition(
            f"namespace {quote(name)} must be empty, but it still has {', '.join(in_use)}"
        )
    try:
        tx.execute(_DELETE, (name,))
    except sqlite3.IntegrityError as exc:
        # A table referencing namespaces(name) whose kind registered no check.
        raise errdefs.FailedPrecondition(
            f"namespace {quote(name)} must be empty, but it is still referenced: {exc}"
        ) from None
    events.publish(tx, name, "/namespaces/delete", {"name": name})
