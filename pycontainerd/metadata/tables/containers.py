"""Containers: the metadata of what a task runs (containerd ``metadata/containers.go``).

A container is an id (an identifier) with labels, an image name, a runtime
(name and options), an OCI spec, and optionally the snapshot holding its root
filesystem (``snapshotter`` + ``snapshot_key``). It is only metadata: a task
(``tasks.create``) runs it. While a container exists its snapshot and the
objects its labels reference (``containerd.io/gc.ref.*``) are roots of the
garbage collector. ``spec``, runtime ``options`` and ``extensions`` are
``Any`` maps ``{type_url, value}`` stored as msgpack.
"""

from __future__ import annotations

import builtins
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs
import msgpack

from pycontainerd.api import errdefs, filters, identifiers
from pycontainerd.api import labels as label_rules

from .. import _schema, events, gc
from .._db import Queryable, Transaction
from .._schema import quote
from . import namespaces


@attrs.frozen(kw_only=True)
class ContainerRecord:
    id: str
    labels: Mapping[str, str] = attrs.field(factory=dict)
    image: str = ""
    runtime_name: str = ""
    runtime_options: Mapping[str, Any] | None = None
    spec: Mapping[str, Any] | None = None
    snapshotter: str = ""
    snapshot_key: str = ""
    extensions: Mapping[str, Any] = attrs.field(factory=dict)
    sandbox: str = ""
    created_at: datetime = _schema.EPOCH
    updated_at: datetime = _schema.EPOCH


def _pack(value: Any) -> bytes | None:
    if value is None:
        return None
    try:
        data: bytes = msgpack.packb(value, use_bin_type=True, datetime=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise errdefs.InvalidArgument(f"container: cannot encode {exc}") from None
    return data


def _unpack(data: bytes | None) -> Any:
    if data is None:
        return None
    return msgpack.unpackb(data, raw=False, timestamp=3, strict_map_key=False)


def validate(rec: ContainerRecord) -> None:
    """containerd's ``validateContainer``.

    Raises:
        errdefs.InvalidArgument: a bad id, no runtime name, no spec, a snapshot
            key without a snapshotter, an empty extension name, or bad labels.
    """
    identifiers.validate(rec.id)
    label_rules.validate_labels(rec.labels)
    for name in rec.extensions:
        if not name:
            raise errdefs.InvalidArgument("extension keys must not be empty")
    if not rec.runtime_name:
        raise errdefs.InvalidArgument("must specify a runtime name")
    if rec.spec is None:
        raise errdefs.InvalidArgument("must specify a spec")
    if rec.snapshot_key and not rec.snapshotter:
        raise errdefs.InvalidArgument("snapshot key must be empty without a snapshotter")


_SELECT = (
    "SELECT id, labels, image, runtime_name, runtime_options, spec, snapshotter,"
    " snapshot_key, extensions, sandbox, created_at, updated_at FROM containers"
)


def _record(row: tuple[Any, ...]) -> ContainerRecord:
    return ContainerRecord(
        id=row[0],
        labels=_schema.unpack_labels(row[1]),
        image=row[2],
        runtime_name=row[3],
        runtime_options=_unpack(row[4]),
        spec=_unpack(row[5]),
        snapshotter=row[6],
        snapshot_key=row[7],
        extensions=_unpack(row[8]) or {},
        sandbox=row[9],
        created_at=_schema.from_micros(row[10]),
        updated_at=_schema.from_micros(row[11]),
    )


def fields(rec: ContainerRecord) -> dict[str, object]:
    """What container filters see: ``id``, ``runtime.name``, ``image``, ``labels.<k>``."""
    return {
        "id": rec.id,
        "runtime": {"name": rec.runtime_name},
        "image": rec.image,
        "labels": dict(rec.labels),
        "snapshotter": rec.snapshotter,
    }


def get(q: Queryable, ns: str, id: str) -> ContainerRecord:
    row = q.execute(_SELECT + " WHERE namespace = ? AND id = ?", (ns, id)).fetchone()
    if row is None:
        raise errdefs.NotFound(f"container {quote(id)}: not found")
    return _record(row)


def list(q: Queryable, ns: str, filters_: Sequence[str] = ()) -> builtins.list[ContainerRecord]:
    match = filters.parse_all(filters_)
    recs = [_record(r) for r in q.execute(_SELECT + " WHERE namespace = ? ORDER BY id", (ns,))]
    return [r for r in recs if match.match(filters.adapt(fields(r)))]


def _write(tx: Transaction, ns: str, rec: ContainerRecord, insert: bool) -> int:
    values = (
        _schema.pack_labels(rec.labels),
        rec.image,
        rec.runtime_name,
        _pack(rec.runtime_options),
        _pack(rec.spec),
        rec.snapshotter,
        rec.snapshot_key,
        _pack(dict(rec.extensions)),
        rec.sandbox,
        _schema.to_micros(rec.updated_at),
    )
    if insert:
        return tx.execute(
            "INSERT INTO containers (labels, image, runtime_name, runtime_options, spec,"
            " snapshotter, snapshot_key, extensions, sandbox, updated_at, namespace, id,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (*values, ns, rec.id, _schema.to_micros(rec.created_at)),
        ).rowcount
    return tx.execute(
        "UPDATE containers SET labels = ?, image = ?, runtime_name = ?, runtime_options = ?,"
        " spec = ?, snapshotter = ?, snapshot_key = ?, extensions = ?, sandbox = ?,"
        " updated_at = ? WHERE namespace = ? AND id = ?",
        (*values, ns, rec.id),
    ).rowcount


def create(tx: Transaction, ns: str, rec: ContainerRecord) -> ContainerRecord:
    """Publishes ``/containers/create``; ``AlreadyExists`` for a taken id."""
    rec = attrs.evolve(rec, labels={k: v for k, v in rec.labels.items() if v})
    validate(rec)
    namespaces.ensure(tx, ns)
    now = datetime.now(UTC)
    rec = attrs.evolve(rec, created_at=now, updated_at=now)
    if _write(tx, ns, rec, insert=True) != 1:
        raise errdefs.AlreadyExists(f"container {quote(rec.id)}: already exists")
    runtime = {"name": rec.runtime_name, "options": rec.runtime_options}
    events.publish(
        tx, ns, "/containers/create", {"id": rec.id, "image": rec.image, "runtime": runtime}
    )
    return rec


def _merge_map(
    current: Mapping[str, Any], new: Mapping[str, Any], prefix: str, path: str
) -> dict[str, Any]:
    merged = dict(current)
    if path == prefix:
        return {k: v for k, v in new.items() if v}
    key = path[len(prefix) + 1 :]
    value = new.get(key)
    if value:
        merged[key] = value
    else:
        merged.pop(key, None)
    return merged


def update(tx: Transaction, ns: str, rec: ContainerRecord, paths: Sequence[str]) -> ContainerRecord:
    """containerd's update: paths ``labels``, ``labels.<k>``, ``spec``, ``extensions``,
    ``extensions.<k>``, ``image``, ``snapshotkey``; none replaces all of them, and
    then a changed ``snapshotter`` or runtime name is ``InvalidArgument``
    (immutable). Publishes ``/containers/update``."""
    current = get(tx, ns, rec.id)
    out = current
    if not paths:
        if rec.snapshotter and rec.snapshotter != current.snapshotter:
            raise errdefs.InvalidArgument(f"container {quote(rec.id)}: snapshotter is immutable")
        if rec.runtime_name and rec.runtime_name != current.runtime_name:
            raise errdefs.InvalidArgument(f"container {quote(rec.id)}: runtime is immutable")
        out = attrs.evolve(
            current,
            labels={k: v for k, v in rec.labels.items() if v},
            spec=rec.spec,
            extensions=dict(rec.extensions),
            image=rec.image,
            snapshot_key=rec.snapshot_key,
        )
    for path in paths:
        if path == "labels" or path.startswith("labels."):
            out = attrs.evolve(out, labels=_merge_map(out.labels, rec.labels, "labels", path))
        elif path == "extensions" or path.startswith("extensions."):
            merged = _merge_map(out.extensions, rec.extensions, "extensions", path)
            out = attrs.evolve(out, extensions=merged)
        elif path == "spec":
            out = attrs.evolve(out, spec=rec.spec)
        elif path == "image":
            out = attrs.evolve(out, image=rec.image)
        elif path == "snapshotkey":
            out = attrs.evolve(out, snapshot_key=rec.snapshot_key)
        else:
            raise errdefs.InvalidArgument(
                f"cannot update {path!r} field on container {quote(rec.id)}"
            )
    out = attrs.evolve(out, updated_at=datetime.now(UTC))
    validate(out)
    _write(tx, ns, out, insert=False)
    events.publish(
        tx,
        ns,
        "/containers/update",
        {
            "id": out.id,
            "image": out.image,
            "labels": dict(out.labels),
            "snapshot_key": out.snapshot_key,
        },
    )
    return out


def delete(tx: Transaction, ns: str, id: str) -> None:
    """Publishes ``/containers/delete``; ``NotFound`` for an unknown id."""
    if tx.execute("DELETE FROM containers WHERE namespace = ? AND id = ?", (ns, id)).rowcount != 1:
        raise errdefs.NotFound(f"container {quote(id)}: not found")
    events.publish(tx, ns, "/containers/delete", {"id": id})


def _has_containers(cur: sqlite3.Cursor, ns: str) -> bool:
    row = cur.execute("SELECT 1 FROM containers WHERE namespace = ? LIMIT 1", (ns,))
    return row.fetchone() is not None


def _gc_roots(q: Queryable, ns: str) -> Iterable[gc.Node]:
    for sn, key, packed in q.execute(
        "SELECT snapshotter, snapshot_key, labels FROM containers WHERE namespace = ?", (ns,)
    ):
        if sn and key:
            yield ("snapshot", ns, sn, key)
        yield from gc.label_refs(ns, _schema.unpack_labels(packed))


namespaces.register_namespace_user("containers", _has_containers)
gc.register_root_source("containers", _gc_roots)
