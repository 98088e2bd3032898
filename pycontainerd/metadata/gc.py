"""Garbage collection: containerd's tri-color mark and sweep over the metadata
(``metadata/gc.go``, ``gc/gc.go``, ``docs/garbage-collection.md``).

Nodes are namespaced content (a digest), snapshots (a snapshotter and key) and
ingests (a ref). **Roots**, per namespace: unexpired leases with everything
they hold; images (their target and label references); content and snapshots
labelled ``containerd.io/gc.root``; ingests that have not expired (and the blob
they expect); whatever a registered root source names (containers, later).
**Edges**: a node's ``containerd.io/gc.ref.content[.x|/x]=<digest>`` and
``containerd.io/gc.ref.snapshot.<snapshotter>[/x]=<key>`` labels, and a
snapshot's parent. A lease labelled ``containerd.io/gc.flat`` makes its
objects roots without following their labels (snapshot parents still are).

    grey = roots ──▶ pop a node, colour it black, push its unvisited edges ──▶ ...
    sweep: every content, snapshot and ingest row that is not black;
           every lease whose ``containerd.io/gc.expire`` has passed

:func:`collect` runs in one metadata transaction; the caller then removes the
bytes (blobs, ingest data, snapshot directories) that no namespace references
any more — see :func:`pycontainerd.metadata.collect_garbage`. Images and
containers are never collected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime

import attrs

from . import _schema, events
from ._db import Queryable, Transaction

ROOT_LABEL = "containerd.io/gc.root"
EXPIRE_LABEL = "containerd.io/gc.expire"
FLAT_LABEL = "containerd.io/gc.flat"
REF_CONTENT = "containerd.io/gc.ref.content"
REF_SNAPSHOT = "containerd.io/gc.ref.snapshot."

Node = tuple[str, str, str, str]
"""``(kind, namespace, a, b)``: ``("content", ns, digest, "")``,
``("snapshot", ns, snapshotter, key)``, ``("ingest", ns, ref, "")``."""

RootSource = Callable[[Queryable, str], Iterable[Node]]
_ROOT_SOURCES: dict[str, RootSource] = {}


def register_root_source(kind: str, source: RootSource) -> None:
    """Add roots from another table (containers name their snapshot and labels)."""
    _ROOT_SOURCES[kind] = source


@attrs.frozen(kw_only=True)
class GcResult:
    """What one collection removed from the metadata."""

    content: list[tuple[str, str]] = attrs.field(factory=list)
    """``(namespace, digest)``"""
    snapshots: list[tuple[str, str, str, str]] = attrs.field(factory=list)
    """``(namespace, snapshotter, key, backend_key)``"""
    ingests: list[str] = attrs.field(factory=list)
    """backend refs"""
    leases: list[tuple[str, str]] = attrs.field(factory=list)
    """``(namespace, id)``"""

    @property
    def removed(self) -> int:
        return len(self.content) + len(self.snapshots) + len(self.ingests) + len(self.leases)


def label_refs(ns: str, labels: Mapping[str, str]) -> Iterator[Node]:
    """The nodes a label map references."""
    for key, value in labels.items():
        if not value:
            continue
        if key == REF_CONTENT or key.startswith((REF_CONTENT + ".", REF_CONTENT + "/")):
            yield ("content", ns, value, "")
        elif key.startswith(REF_SNAPSHOT):
            snapshotter = key[len(REF_SNAPSHOT) :].split("/", 1)[0]
            if snapshotter:
                yield ("snapshot", ns, snapshotter, value)


def _expired(labels: Mapping[str, str], now: datetime) -> bool:
    value = labels.get(EXPIRE_LABEL)
    if not value:
        return False
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False  # containerd ignores an expiry it cannot parse
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when < now


class _Graph:
    """The labels and parents of every node, read once per collection."""

    def __init__(self, q: Queryable) -> None:
        self.content: dict[Node, Mapping[str, str]] = {}
        for ns, digest, packed in q.execute("SELECT namespace, digest, labels FROM content_blobs"):
            self.content[("content", ns, digest, "")] = _schema.unpack_labels(packed)
        self.snapshots: dict[Node, tuple[Mapping[str, str], str, str]] = {}
        for ns, sn, key, bkey, parent, packed in q.execute(
            "SELECT namespace, snapshotter, key, backend_key, parent, labels FROM snapshots"
        ):
            self.snapshots[("snapshot", ns, sn, key)] = (
                _schema.unpack_labels(packed),
                parent,
                bkey,
            )
        self.ingests: dict[Node, tuple[str, str, int | None]] = {}
        for ns, ref, bref, expected, expire in q.execute(
            "SELECT namespace, ref, backend_ref, expected, expire_at FROM content_ingests"
        ):
            self.ingests[("ingest", ns, ref, "")] = (bref, expected, expire)

    def edges(self, node: Node, flat: bool) -> Iterator[Node]:
        kind, ns, a, _ = node
        if kind == "content":
            labels = self.content.get(node)
            if labels is not None and not flat:
                yield from label_refs(ns, labels)
        elif kind == "snapshot":
            entry = self.snapshots.get(node)
            if entry is not None:
                labels, parent, _ = entry
                if parent:
                    yield ("snapshot", ns, a, parent)
                if not flat:
                    yield from label_refs(ns, labels)
        elif kind == "ingest":
            ingest = self.ingests.get(node)
            if ingest is not None and ingest[1]:
                yield ("content", ns, ingest[1], "")


def _roots(
    q: Queryable, graph: _Graph, now: datetime
) -> tuple[list[Node], set[Node], list[tuple[str, str]]]:
    roots: list[Node] = []
    flat: set[Node] = set()
    expired: list[tuple[str, str]] = []
    for ns, lease_id, packed in q.execute("SELECT namespace, id, labels FROM leases"):
        labels = _schema.unpack_labels(packed)
        if _expired(labels, now):
            expired.append((ns, lease_id))
            continue
        is_flat = bool(labels.get(FLAT_LABEL))
        for rtype, rid in q.execute(
            "SELECT type, id FROM lease_resources WHERE namespace = ? AND lease = ?",
            (ns, lease_id),
        ).fetchall():
            if rtype == "content":
                node: Node = ("content", ns, rid, "")
            elif rtype == "ingests":
                node = ("ingest", ns, rid, "")
            elif rtype.startswith("snapshots/"):
                node = ("snapshot", ns, rtype[len("snapshots/") :], rid)
            else:
                continue
            roots.append(node)
            if is_flat:
                flat.add(node)
    for ns, digest, packed in q.execute("SELECT namespace, digest, labels FROM images"):
        roots.append(("content", ns, digest, ""))
        roots.extend(label_refs(ns, _schema.unpack_labels(packed)))
    roots.extend(node for node, cl in graph.content.items() if cl.get(ROOT_LABEL))
    roots.extend(node for node, (sl, _, _) in graph.snapshots.items() if sl.get(ROOT_LABEL))
    micros = _schema.to_micros(now)
    for node, (_, _, expire) in graph.ingests.items():
        if expire is not None and expire > micros:
            roots.append(node)
    namespaces = [r[0] for r in q.execute("SELECT name FROM namespaces")]
    for source in _ROOT_SOURCES.values():
        for ns in namespaces:
            roots.extend(source(q, ns))
    return roots, flat, expired


def mark(
    q: Queryable, now: datetime | None = None
) -> tuple[set[Node], _Graph, list[tuple[str, str]]]:
    """The black set: every node reachable from a root."""
    now = now or datetime.now(UTC)
    graph = _Graph(q)
    grey, flat, expired = _roots(q, graph, now)
    black: set[Node] = set()
    while grey:
        node = grey.pop()
        if node in black:
            continue
        black.add(node)
        for edge in graph.edges(node, node in flat):
            if edge not in black:
                grey.append(edge)
    return black, graph, expired


def collect(tx: Transaction, now: datetime | None = None) -> GcResult:
    """Mark, then sweep in this transaction; publishes ``/content/delete`` and
    ``/snapshot/remove`` for what it removes."""
    black, graph, expired = mark(tx, now)
    result = GcResult()
    for ns, lease_id in expired:
        tx.execute("DELETE FROM leases WHERE namespace = ? AND id = ?", (ns, lease_id))
        result.leases.append((ns, lease_id))
    for node in graph.content:
        if node not in black:
            _, ns, digest, _ = node
            tx.execute("DELETE FROM content_blobs WHERE namespace = ? AND digest = ?", (ns, digest))
            events.publish(tx, ns, "/content/delete", {"digest": digest})
            result.content.append((ns, digest))
    for node, (_, _, bkey) in graph.snapshots.items():
        if node not in black:
            _, ns, sn, key = node
            tx.execute(
                "DELETE FROM snapshots WHERE namespace = ? AND snapshotter = ? AND key = ?",
                (ns, sn, key),
            )
            events.publish(tx, ns, "/snapshot/remove", {"key": key, "snapshotter": sn})
            result.snapshots.append((ns, sn, key, bkey))
    for node, (bref, _, _) in graph.ingests.items():
        if node not in black:
            _, ns, ref, _ = node
            tx.execute("DELETE FROM content_ingests WHERE namespace = ? AND ref = ?", (ns, ref))
            result.ingests.append(bref)
    return result


def referenced(q: Queryable) -> tuple[set[str], set[str]]:
    """Digests some namespace owns or an ingest expects, and live backend ingest refs."""
    digests = {r[0] for r in q.execute("SELECT DISTINCT digest FROM content_blobs")}
    brefs: set[str] = set()
    for bref, expected in q.execute("SELECT backend_ref, expected FROM content_ingests"):
        brefs.add(bref)
        if expected:
            digests.add(expected)
    return digests, brefs
