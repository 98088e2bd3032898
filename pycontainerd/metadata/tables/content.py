"""Content ownership per namespace (containerd ``metadata/content.go``, the tables).

Blobs are stored once in the local store; a namespace *owns* a blob when
``content_blobs`` has a row for it, with that namespace's labels. An ingest
in a namespace is a row of ``content_ingests`` naming its backend ref
``<ns>/<seq>/<ref>`` in the local store, and, when the ingest will only link
a blob that is already stored (containerd's shared content), that blob as
``expected``. These are the table operations; :mod:`._content_store` composes
them with the local store into a namespaced content store.
"""

from __future__ import annotations

import builtins
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import attrs

from pycontainerd.api import errdefs, filters
from pycontainerd.api import labels as label_rules
from pycontainerd.content import Info, check_digest, info_fields

from .. import _schema, events
from .._db import Queryable, Transaction
from . import leases, namespaces

INGEST_EXPIRY = timedelta(hours=24)
"""An ingest opened without a lease may be collected after this long."""


@attrs.frozen(kw_only=True)
class IngestRecord:
    ref: str
    backend_ref: str
    expected: str
    expire_at: datetime | None


_BLOB = "SELECT digest, size, labels, created_at, updated_at FROM content_blobs"


def _info(row: tuple[str, int, bytes, int, int]) -> Info:
    return Info(
        digest=row[0],
        size=row[1],
        labels=_schema.unpack_labels(row[2]),
        created_at=_schema.from_micros(row[3]),
        updated_at=_schema.from_micros(row[4]),
    )


def get_blob(q: Queryable, ns: str, digest: str) -> Info:
    """Raises ``NotFound`` unless ``ns`` owns ``digest``."""
    check_digest(digest)
    row = q.execute(_BLOB + " WHERE namespace = ? AND digest = ?", (ns, digest)).fetchone()
    if row is None:
        raise errdefs.NotFound(f"content {digest}: not found")
    return _info(row)


def has_blob(q: Queryable, ns: str, digest: str) -> bool:
    return (
        q.execute(
            "SELECT 1 FROM content_blobs WHERE namespace = ? AND digest = ?", (ns, digest)
        ).fetchone()
        is not None
    )


def list_blobs(q: Queryable, ns: str, filters_: Sequence[str] = ()) -> builtins.list[Info]:
    """The blobs of ``ns`` by digest; filter fields ``digest``, ``size``, ``labels.<key>``."""
    match = filters.parse_all(filters_)
    rows = q.execute(_BLOB + " WHERE namespace = ? ORDER BY digest", (ns,))
    if isinstance(match, filters.Always):
        return [_info(r) for r in rows]
    out = (_info(r) for r in rows)
    return [i for i in out if match.match(filters.adapt(info_fields(i)))]


def list_blobs_wire(
    q: Queryable, ns: str, filters_: Sequence[str] = ()
) -> builtins.list[dict[str, object]]:
    """:func:`list_blobs` as wire maps (``ContentInfo`` fields), built straight
    from the rows: the fast path of ``content.list``."""
    match = filters.parse_all(filters_)
    every = isinstance(match, filters.Always)
    out: builtins.list[dict[str, object]] = []
    unpack, when = _schema.unpack_labels, _schema.from_micros
    for digest, size, packed, created, updated in q.execute(
        _BLOB + " WHERE namespace = ? ORDER BY digest", (ns,)
    ):
        labels = unpack(packed)
        if not every and not match.match(
            filters.adapt({"digest": digest, "size": str(size), "labels": labels})
        ):
            continue
        out.append(
            {
                "digest": digest,
                "size": size,
                "created_at": when(created),
                "updated_at": when(updated),
                "labels": labels,
            }
        )
    return out


def add_blob(
    tx: Transaction,
    ns: str,
    digest: str,
    size: int,
    labels: Mapping[str, str] | None,
    lease: str | None,
) -> Info:
    """Make ``ns`` own a stored blob (the metadata half of a commit).

    Raises:
        errdefs.AlreadyExists: ``ns`` owns it already.
        errdefs.NotFound: the call's lease does not exist.
    """
    values = dict(labels or {})
    label_rules.validate_labels(values)
    namespaces.ensure(tx, ns)
    now = datetime.now(UTC)
    micros = _schema.to_micros(now)
    cur = tx.execute(
        "INSERT INTO content_blobs (namespace, digest, size, labels, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (ns, digest, size, _schema.pack_labels(values), micros, micros),
    )
    leases.hold(tx, ns, lease, "content", digest)
    if cur.rowcount != 1:
        raise errdefs.AlreadyExists(f"content {digest}: already exists")
    return Info(digest=digest, size=size, labels=values, created_at=now, updated_at=now)


def update_blob(tx: Transaction, ns: str, info: Info, paths: Sequence[str]) -> Info:
    """Set labels (``labels``, ``labels.<key>``; none = replace all)."""
    current = get_blob(tx, ns, info.digest)
    merged = label_rules.apply_update(
        current.labels, info.labels, paths, what=f"content info {info.digest!r}"
    )
    now = datetime.now(UTC)
    tx.execute(
        "UPDATE content_blobs SET labels = ?, updated_at = ? WHERE namespace = ? AND digest = ?",
        (_schema.pack_labels(merged), _schema.to_micros(now), ns, info.digest),
    )
    return attrs.evolve(current, labels=merged, updated_at=now)


def delete_blob(tx: Transaction, ns: str, digest: str) -> None:
    """Remove ``digest`` from ``ns`` and publish ``/content/delete``; the bytes go at GC."""
    check_digest(digest)
    cur = tx.execute("DELETE FROM content_blobs WHERE namespace = ? AND digest = ?", (ns, digest))
    if cur.rowcount != 1:
        raise errdefs.NotFound(f"content {digest}: not found")
    events.publish(tx, ns, "/content/delete", {"digest": digest})


def blob_namespaces_count(q: Queryable, digest: str) -> int:
    row = q.execute("SELECT COUNT(*) FROM content_blobs WHERE digest = ?", (digest,)).fetchone()
    return int(row[0])


def is_shareable(q: Queryable, digest: str) -> bool:
    """Whether a namespace labelled ``containerd.io/namespace.shareable=true`` owns it."""
    rows = q.execute(
        "SELECT n.labels FROM content_blobs b JOIN namespaces n ON n.name = b.namespace"
        " WHERE b.digest = ?",
        (digest,),
    )
    return any(
        _schema.unpack_labels(r[0]).get("containerd.io/namespace.shareable") == "true" for r in rows
    )


# -- ingests ------------------------------------------------------------------


def get_ingest(q: Queryable, ns: str, ref: str) -> IngestRecord | None:
    row = q.execute(
        "SELECT ref, backend_ref, expected, expire_at FROM content_ingests"
        " WHERE namespace = ? AND ref = ?",
        (ns, ref),
    ).fetchone()
    return None if row is None else _ingest(row)


def _ingest(row: tuple[str, str, str, int | None]) -> IngestRecord:
    return IngestRecord(
        ref=row[0],
        backend_ref=row[1],
        expected=row[2],
        expire_at=None if row[3] is None else _schema.from_micros(row[3]),
    )


def list_ingests(q: Queryable, ns: str) -> builtins.list[IngestRecord]:
    rows = q.execute(
        "SELECT ref, backend_ref, expected, expire_at FROM content_ingests"
        " WHERE namespace = ? ORDER BY ref",
        (ns,),
    )
    return [_ingest(r) for r in rows]


def open_ingest(
    tx: Transaction, ns: str, ref: str, expected: str, lease: str | None
) -> IngestRecord:
    """Create (or find) the ingest of ``ref`` and hold it in the call's lease.

    Args:
        expected: the blob this ingest will link without writing (shared
            content), or ``""``.

    Without a lease the ingest expires after :data:`INGEST_EXPIRY`.
    """
    namespaces.ensure(tx, ns)
    held = leases.hold(tx, ns, lease, "ingests", ref)
    expire_at = None if held else _schema.to_micros(datetime.now(UTC) + INGEST_EXPIRY)
    current = get_ingest(tx, ns, ref)
    if current is None:
        seq = tx.execute(
            "UPDATE journal_meta SET value = value + 1 WHERE key = 'ingest_sequence'"
            " RETURNING value"
        ).fetchone()[0]
        backend_ref = f"{ns}/{seq}/{ref}"
        tx.execute(
            "INSERT INTO content_ingests (namespace, ref, backend_ref, expected, expire_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (ns, ref, backend_ref, expected, expire_at),
        )
    else:
        backend_ref = current.backend_ref
        if held:
            expire_at = None
        elif current.expire_at is None:
            expire_at = None  # an earlier call's lease holds it
        tx.execute(
            "UPDATE content_ingests SET expected = ?, expire_at = ?"
            " WHERE namespace = ? AND ref = ?",
            (expected, expire_at, ns, ref),
        )
    return IngestRecord(
        ref=ref,
        backend_ref=backend_ref,
        expected=expected,
        expire_at=None if expire_at is None else _schema.from_micros(expire_at),
    )


def set_ingest_expected(tx: Transaction, ns: str, ref: str, expected: str) -> None:
    tx.execute(
        "UPDATE content_ingests SET expected = ? WHERE namespace = ? AND ref = ?",
        (expected, ns, ref),
    )


def remove_ingest(tx: Transaction, ns: str, ref: str, lease: str | None = None) -> None:
    tx.execute("DELETE FROM content_ingests WHERE namespace = ? AND ref = ?", (ns, ref))
    leases.release(tx, ns, lease, "ingests", ref)


def _has_blobs(cur: sqlite3.Cursor, ns: str) -> bool:
    row = cur.execute("SELECT 1 FROM content_blobs WHERE namespace = ? LIMIT 1", (ns,))
    return row.fetchone() is not None


namespaces.register_namespace_user("blobs", _has_blobs)
