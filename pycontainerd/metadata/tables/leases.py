"""Leases: what keeps a client's work in progress from the garbage collector
(containerd ``metadata/leases.go``).

A lease is an id with labels and a set of resources — ``content`` (a digest),
``ingests`` (an ingest ref), ``snapshots/<snapshotter>`` (a snapshot key).
While it lives (until deleted, or until its ``containerd.io/gc.expire`` label
passes), everything it holds is a root of the garbage collector. Objects
created by a call carrying the ``lease`` meta key are added to that lease as
they are created (:func:`add_resource` from the content and snapshot stores).
"""

from __future__ import annotations

import base64
import builtins
import os
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import attrs

from pycontainerd.api import errdefs, filters
from pycontainerd.api import labels as label_rules
from pycontainerd.content import check_digest

from .. import _schema
from .._db import Queryable, Transaction
from .._schema import quote
from . import namespaces


@attrs.frozen(kw_only=True)
class LeaseRecord:
    id: str
    created_at: datetime
    labels: Mapping[str, str]


@attrs.frozen(kw_only=True)
class Resource:
    """``{id, type}``: ``content`` + digest, ``ingests`` + ref, ``snapshots/<sn>`` + key."""

    id: str
    type: str


def generate_id() -> str:
    """containerd's generated lease id: ``<unix nanos>-<base64url of 3 random bytes>``."""
    return f"{time.time_ns()}-{base64.urlsafe_b64encode(os.urandom(3)).decode()}"


def check_resource(resource: Resource) -> None:
    """containerd's ``parseLeaseResource``.

    Raises:
        errdefs.InvalidArgument: an empty id, or a content id that is not a digest.
        errdefs.NotImplemented_: an unknown type.
    """
    if not resource.id:
        raise errdefs.InvalidArgument("resource id must not be empty")
    if resource.type == "content":
        check_digest(resource.id)
    elif resource.type == "ingests" or (
        resource.type.startswith("snapshots/") and len(resource.type) > len("snapshots/")
    ):
        return
    else:
        raise errdefs.NotImplemented_(f"resource type {quote(resource.type)}: not supported")


def create(tx: Transaction, ns: str, id: str, labels: Mapping[str, str]) -> LeaseRecord:
    """Raises ``AlreadyExists``, or ``InvalidArgument`` for an empty id or bad labels."""
    if not id:
        raise errdefs.InvalidArgument("lease id must not be empty")
    label_rules.validate_labels(labels)
    namespaces.ensure(tx, ns)
    now = datetime.now(UTC)
    cur = tx.execute(
        "INSERT INTO leases (namespace, id, labels, created_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        (ns, id, _schema.pack_labels(labels), _schema.to_micros(now)),
    )
    if cur.rowcount != 1:
        raise errdefs.AlreadyExists(f"lease {quote(id)}: already exists")
    return LeaseRecord(id=id, created_at=now, labels=dict(labels))


def get(q: Queryable, ns: str, id: str) -> LeaseRecord:
    row = q.execute(
        "SELECT id, created_at, labels FROM leases WHERE namespace = ? AND id = ?", (ns, id)
    ).fetchone()
    if row is None:
        raise errdefs.NotFound(f"lease {quote(id)}: not found")
    return _record(row)


def _record(row: tuple[str, int, bytes]) -> LeaseRecord:
    return LeaseRecord(
        id=row[0], created_at=_schema.from_micros(row[1]), labels=_schema.unpack_labels(row[2])
    )


def list(q: Queryable, ns: str, filters_: Sequence[str] = ()) -> builtins.list[LeaseRecord]:
    """Leases of ``ns`` by id; filter fields ``id``, ``labels.<key>``."""
    match = filters.parse_all(filters_)
    rows = q.execute(
        "SELECT id, created_at, labels FROM leases WHERE namespace = ? ORDER BY id", (ns,)
    )
    out = [_record(r) for r in rows]
    return [r for r in out if match.match(filters.adapt({"id": r.id, "labels": r.labels}))]


def delete(tx: Transaction, ns: str, id: str) -> None:
    """Delete the lease and release its resources (collected at the next GC)."""
    cur = tx.execute("DELETE FROM leases WHERE namespace = ? AND id = ?", (ns, id))
    if cur.rowcount != 1:
        raise errdefs.NotFound(f"lease {quote(id)}: not found")


def add_resource(tx: Transaction, ns: str, id: str, resource: Resource) -> None:
    check_resource(resource)
    get(tx, ns, id)
    tx.execute(
        "INSERT INTO lease_resources (namespace, lease, type, id) VALUES (?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        (ns, id, resource.type, resource.id),
    )


def delete_resource(tx: Transaction, ns: str, id: str, resource: Resource) -> None:
    check_resource(resource)
    get(tx, ns, id)
    tx.execute(
        "DELETE FROM lease_resources WHERE namespace = ? AND lease = ? AND type = ? AND id = ?",
        (ns, id, resource.type, resource.id),
    )


def list_resources(q: Queryable, ns: str, id: str) -> builtins.list[Resource]:
    get(q, ns, id)
    rows = q.execute(
        "SELECT id, type FROM lease_resources WHERE namespace = ? AND lease = ? ORDER BY type, id",
        (ns, id),
    )
    return [Resource(id=r[0], type=r[1]) for r in rows]


def hold(tx: Transaction, ns: str, lease: str | None, type: str, id: str) -> bool:
    """Add what a call creates to the call's lease (its ``lease`` meta key).

    Returns:
        Whether a lease holds the object now (``False`` without a lease).

    Raises:
        errdefs.NotFound: the lease does not exist.
    """
    if not lease:
        return False
    if (
        tx.execute("SELECT 1 FROM leases WHERE namespace = ? AND id = ?", (ns, lease)).fetchone()
        is None
    ):
        raise errdefs.NotFound(f"lease {quote(lease)}: lease does not exist")
    tx.execute(
        "INSERT INTO lease_resources (namespace, lease, type, id) VALUES (?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        (ns, lease, type, id),
    )
    return True


def release(tx: Transaction, ns: str, lease: str | None, type: str, id: str) -> None:
    """Remove one object from the call's lease (an ingest once committed)."""
    if lease:
        tx.execute(
            "DELETE FROM lease_resources WHERE namespace = ? AND lease = ? AND type = ? AND id = ?",
            (ns, lease, type, id),
        )
