"""The image store: names pointing at a target descriptor (containerd
``metadata/images.go``).

An image is a name (any string, e.g. ``localhost:5000/library/busybox:latest``)
with labels and a ``target`` descriptor — usually an index or a manifest in the
content store. Images are garbage-collection roots: their target and the
blobs it references stay while the image exists.
"""

from __future__ import annotations

import builtins
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import attrs

from pycontainerd.api import errdefs, filters
from pycontainerd.api import labels as label_rules
from pycontainerd.api.types import Descriptor
from pycontainerd.content import check_digest

from .. import _schema, events
from .._db import Queryable, Transaction
from .._schema import quote
from . import namespaces


@attrs.frozen(kw_only=True)
class ImageRecord:
    name: str
    labels: Mapping[str, str]
    target: Descriptor
    created_at: datetime
    updated_at: datetime


def _validate(name: str, target: Descriptor, values: Mapping[str, str]) -> None:
    if not name:
        raise errdefs.InvalidArgument("image name must not be empty")
    try:
        check_digest(target.digest)
    except errdefs.InvalidArgument as exc:
        raise errdefs.InvalidArgument(f"image {quote(name)}: target.digest: {exc}") from None
    if target.size <= 0:
        raise errdefs.InvalidArgument(f"image {quote(name)}: target.size must be greater than 0")
    if not target.media_type:
        raise errdefs.InvalidArgument(f"image {quote(name)}: target.media_type must be set")
    label_rules.validate_labels(values)
    label_rules.validate_labels(target.annotations)


_SELECT = (
    "SELECT name, media_type, digest, size, annotations, labels, created_at, updated_at FROM images"
)


def _record(row: tuple[str, str, str, int, bytes, bytes, int, int]) -> ImageRecord:
    return ImageRecord(
        name=row[0],
        target=Descriptor(
            media_type=row[1],
            digest=row[2],
            size=row[3],
            annotations=_schema.unpack_labels(row[4]),
        ),
        labels=_schema.unpack_labels(row[5]),
        created_at=_schema.from_micros(row[6]),
        updated_at=_schema.from_micros(row[7]),
    )


def fields(rec: ImageRecord) -> dict[str, object]:
    """What image filters see (containerd's adaptor)."""
    return {
        "name": rec.name,
        "target": {"digest": rec.target.digest, "mediatype": rec.target.media_type},
        "labels": dict(rec.labels),
        "annotations": dict(rec.target.annotations),
    }


def get(q: Queryable, ns: str, name: str) -> ImageRecord:
    row = q.execute(_SELECT + " WHERE namespace = ? AND name = ?", (ns, name)).fetchone()
    if row is None:
        raise errdefs.NotFound(f"image {quote(name)}: not found")
    return _record(row)


def list(q: Queryable, ns: str, filters_: Sequence[str] = ()) -> builtins.list[ImageRecord]:
    """Filter fields ``name``, ``target.digest``, ``target.mediatype``, ``labels.<k>``,
    ``annotations.<k>``."""
    match = filters.parse_all(filters_)
    recs = [_record(r) for r in q.execute(_SELECT + " WHERE namespace = ? ORDER BY name", (ns,))]
    return [r for r in recs if match.match(filters.adapt(fields(r)))]


def _write(tx: Transaction, ns: str, rec: ImageRecord, insert: bool) -> int:
    t = rec.target
    values = (
        t.media_type,
        t.digest,
        t.size,
        _schema.pack_labels(t.annotations),
        _schema.pack_labels(rec.labels),
        _schema.to_micros(rec.updated_at),
    )
    if insert:
        cur = tx.execute(
            "INSERT INTO images (namespace, name, media_type, digest, size, annotations,"
            " labels, updated_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (ns, rec.name, *values, _schema.to_micros(rec.created_at)),
        )
    else:
        cur = tx.execute(
            "UPDATE images SET media_type = ?, digest = ?, size = ?, annotations = ?,"
            " labels = ?, updated_at = ? WHERE namespace = ? AND name = ?",
            (*values, ns, rec.name),
        )
    return cur.rowcount


def create(
    tx: Transaction, ns: str, name: str, target: Descriptor, labels: Mapping[str, str]
) -> ImageRecord:
    """Publishes ``/images/create``; ``AlreadyExists`` for a taken name."""
    values = {k: v for k, v in labels.items() if v}
    _validate(name, target, values)
    namespaces.ensure(tx, ns)
    now = datetime.now(UTC)
    rec = ImageRecord(name=name, labels=values, target=target, created_at=now, updated_at=now)
    if _write(tx, ns, rec, insert=True) != 1:
        raise errdefs.AlreadyExists(f"image {quote(name)}: already exists")
    events.publish(tx, ns, "/images/create", {"name": name, "labels": dict(values)})
    return rec


def update(
    tx: Transaction,
    ns: str,
    name: str,
    target: Descriptor,
    labels: Mapping[str, str],
    paths: Sequence[str],
) -> ImageRecord:
    """Paths ``labels``, ``labels.<k>``, ``target``, ``annotations``,
    ``annotations.<k>``; none = replace labels and target. Publishes ``/images/update``."""
    current = get(tx, ns, name)
    new_labels = dict(current.labels)
    new_target = current.target
    if not paths:
        new_labels = {k: v for k, v in labels.items() if v}
        new_target = target
    for path in paths:
        if path == "target":
            new_target = target
        elif path == "labels" or path.startswith("labels."):
            new_labels = label_rules.apply_update(
                new_labels, labels, [path], what=f"image {quote(name)}"
            )
        elif path == "annotations" or path.startswith("annotations."):
            inner = "labels" + path[len("annotations") :]
            annotations = label_rules.apply_update(
                new_target.annotations, target.annotations, [inner], what=f"image {quote(name)}"
            )
            new_target = attrs.evolve(new_target, annotations=annotations)
        else:
            raise errdefs.InvalidArgument(f"cannot update {path!r} field on image {quote(name)}")
    _validate(name, new_target, new_labels)
    rec = attrs.evolve(current, labels=new_labels, target=new_target, updated_at=datetime.now(UTC))
    _write(tx, ns, rec, insert=False)
    events.publish(tx, ns, "/images/update", {"name": name, "labels": dict(new_labels)})
    return rec


def delete(tx: Transaction, ns: str, name: str) -> None:
    """Publishes ``/images/delete``; ``NotFound`` for an unknown name."""
    cur = tx.execute("DELETE FROM images WHERE namespace = ? AND name = ?", (ns, name))
    if cur.rowcount != 1:
        raise errdefs.NotFound(f"image {quote(name)}: not found")
    events.publish(tx, ns, "/images/delete", {"name": name})


def _has_images(cur: sqlite3.Cursor, ns: str) -> bool:
    row = cur.execute("SELECT 1 FROM images WHERE namespace = ? LIMIT 1", (ns,))
    return row.fetchone() is not None


namespaces.register_namespace_user("images", _has_images)
