"""Snapshot ownership per namespace (containerd ``metadata/snapshot.go``, the tables).

A snapshotter backend (overlayfs, native, btrfs) knows nothing of namespaces:
every snapshot of every namespace lives in it under a *backend key*
``"<ns>/<seq>/<key>"``, ``<seq>`` drawn from the snapshotter's row of
``snapshot_sequences`` (containerd's bucket ``NextSequence``). A row of
``snapshots`` maps a namespace's key (or committed name) to that backend key,
with the namespace's view of the snapshot: its parent (a name in the same
namespace), every label, and the times. These are the table operations;
:mod:`._snapshot_store` composes them with a backend into containerd's
metadata snapshotter.
"""

from __future__ import annotations

import builtins
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import attrs

from pycontainerd.api import errdefs

from .. import _schema
from .._db import Queryable, Transaction
from . import leases, namespaces

_ROW = "SELECT key, backend_key, parent, labels, created_at, updated_at FROM snapshots"
_MICROSECOND = timedelta(microseconds=1)


@attrs.frozen(kw_only=True)
class SnapshotRecord:
    """One namespace's snapshot: ``key`` is its key (active, view) or name (committed)."""

    key: str
    backend_key: str
    parent: str
    labels: Mapping[str, str]
    created_at: datetime
    updated_at: datetime


def lease_type(snapshotter: str) -> str:
    """The lease resource type of a snapshotter's snapshots: ``snapshots/<sn>``."""
    return f"snapshots/{snapshotter}"


def _record(row: tuple[str, str, str, bytes, int, int]) -> SnapshotRecord:
    return SnapshotRecord(
        key=row[0],
        backend_key=row[1],
        parent=row[2],
        labels=_schema.unpack_labels(row[3]),
        created_at=_schema.from_micros(row[4]),
        updated_at=_schema.from_micros(row[5]),
    )


def get(q: Queryable, ns: str, sn: str, key: str) -> SnapshotRecord | None:
    """The row of ``key``, or ``None``."""
    row = q.execute(
        _ROW + " WHERE namespace = ? AND snapshotter = ? AND key = ?", (ns, sn, key)
    ).fetchone()
    return None if row is None else _record(row)


def require(q: Queryable, ns: str, sn: str, key: str) -> SnapshotRecord:
    """The row of ``key``.

    Raises:
        errdefs.NotFound: ``snapshot <key> does not exist`` (containerd's words).
    """
    rec = get(q, ns, sn, key)
    if rec is None:
        raise errdefs.NotFound(f"snapshot {key} does not exist")
    return rec


def list(q: Queryable, ns: str, sn: str) -> builtins.list[SnapshotRecord]:
    """Every snapshot of ``ns`` in ``sn``, in key order."""
    rows = q.execute(_ROW + " WHERE namespace = ? AND snapshotter = ? ORDER BY key", (ns, sn))
    return [_record(r) for r in rows]


def has_children(q: Queryable, ns: str, sn: str, key: str) -> bool:
    """Whether a snapshot of ``ns`` names ``key`` as its parent."""
    row = q.execute(
        "SELECT 1 FROM snapshots WHERE namespace = ? AND snapshotter = ? AND parent = ? LIMIT 1",
        (ns, sn, key),
    ).fetchone()
    return row is not None


def backend_keys(q: Queryable, sn: str) -> set[str]:
    """Every backend key of ``sn`` that some namespace maps (the collector's live set)."""
    return {
        r[0] for r in q.execute("SELECT backend_key FROM snapshots WHERE snapshotter = ?", (sn,))
    }


def next_backend_key(tx: Transaction, ns: str, sn: str, key: str) -> str:
    """A fresh backend key ``"<ns>/<seq>/<key>"`` (the sequence never goes back)."""
    seq = tx.execute(
        "INSERT INTO snapshot_sequences (snapshotter, value) VALUES (?, 1)"
        " ON CONFLICT (snapshotter) DO UPDATE SET value = value + 1 RETURNING value",
        (sn,),
    ).fetchone()[0]
    return f"{ns}/{seq}/{key}"


def insert(
    tx: Transaction,
    ns: str,
    sn: str,
    key: str,
    backend_key: str,
    parent: str,
    labels: Mapping[str, str],
    lease: str | None,
) -> SnapshotRecord:
    """Record a snapshot of ``ns`` and hold it in the call's lease.

    Raises:
        errdefs.AlreadyExists: ``ns`` has ``key`` already (any kind: keys and
            names share one space).
        errdefs.NotFound: the call's lease does not exist.
    """
    namespaces.ensure(tx, ns)
    now = datetime.now(UTC)
    micros = _schema.to_micros(now)
    cur = tx.execute(
        "INSERT INTO snapshots (namespace, snapshotter, key, backend_key, parent, labels,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (ns, sn, key, backend_key, parent, _schema.pack_labels(labels), micros, micros),
    )
    if cur.rowcount != 1:
        raise errdefs.AlreadyExists(f"snapshot {_schema.quote(key)}: already exists")
    leases.hold(tx, ns, lease, lease_type(sn), key)
    return SnapshotRecord(
        key=key,
        backend_key=backend_key,
        parent=parent,
        labels=dict(labels),
        created_at=now,
        updated_at=now,
    )


def delete(tx: Transaction, ns: str, sn: str, key: str, lease: str | None) -> bool:
    """Forget ``key`` and release it from the call's lease; whether a row was removed."""
    cur = tx.execute(
        "DELETE FROM snapshots WHERE namespace = ? AND snapshotter = ? AND key = ?", (ns, sn, key)
    )
    leases.release(tx, ns, lease, lease_type(sn), key)
    return cur.rowcount == 1


def set_labels(
    tx: Transaction, ns: str, sn: str, key: str, labels: Mapping[str, str]
) -> SnapshotRecord:
    """Store ``labels`` and bump ``updated_at`` (strictly, even within one microsecond).

    Raises:
        errdefs.NotFound: no such snapshot.
    """
    current = require(tx, ns, sn, key)
    now = max(datetime.now(UTC), current.updated_at + _MICROSECOND)
    tx.execute(
        "UPDATE snapshots SET labels = ?, updated_at = ?"
        " WHERE namespace = ? AND snapshotter = ? AND key = ?",
        (_schema.pack_labels(labels), _schema.to_micros(now), ns, sn, key),
    )
    return attrs.evolve(current, labels=dict(labels), updated_at=now)


def _has_snapshots(cur: sqlite3.Cursor, ns: str) -> bool:
    row = cur.execute("SELECT 1 FROM snapshots WHERE namespace = ? LIMIT 1", (ns,))
    return row.fetchone() is not None


namespaces.register_namespace_user("snapshots", _has_snapshots)
