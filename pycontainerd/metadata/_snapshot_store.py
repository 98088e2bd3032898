"""The namespaced snapshotter: a backend seen through the metadata
(containerd ``metadata/snapshot.go``).

A :class:`NamespacedSnapshotter` is bound to one namespace, one snapshotter
name and, optionally, the lease of the call; it satisfies
:class:`~pycontainerd.snapshots.Snapshotter`. Keys are the namespace's own
(``/`` and ``..`` are just characters); the backend only ever sees
``"<ns>/<seq>/<key>"``. Every label is kept in the metadata; only
``containerd.io/snapshot/*`` and ``containerd.io/snapshot.ref`` reach the
backend (containerd's ``FilterInheritedLabels``).

containerd runs the backend call inside its bolt transaction. Here a
transaction must not block on disk, so each change is split, in the order that
keeps metadata and backend consistent when any step fails::

    prepare/view  tx1: checks (ref target, parent, key), reserve the row with a
                       fresh backend key, hold it in the lease
                  backend prepare/view       failed → tx: drop the row, release
                  tx2: publish /snapshot/prepare (prepare only: containerd
                       publishes no event for a view)
    commit        tx1: checks (name free, key exists), reserve the name's row
                  backend commit             failed → tx: drop the name's row
                  tx2: drop the key's row, lease key → name, publish /snapshot/commit
    remove        tx:  checks (exists, no child), drop the row, publish /snapshot/remove
                  backend remove (a failure leaves an orphan for the collector)
    update        backend update of the inherited labels (only when they change),
                  then tx: the labels

A backend snapshot therefore always has its row while it exists, and the
collector (:func:`collect_snapshots`) may remove any backend key that has
none: it lists the backend *before* reading the live keys. The converse — a
row whose backend step never ran, left by a crash — is dropped at start-up by
:func:`repair_snapshots`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence

import attrs

from pycontainerd.api import errdefs, filters
from pycontainerd.api import labels as label_rules
from pycontainerd.api.types import Mount
from pycontainerd.snapshots import Info, Kind, Snapshotter, Usage

from . import events, tables
from ._content_store import Runner
from ._db import Transaction
from ._schema import quote

log = logging.getLogger("pycontainerd.snapshots")

INHERITED_PREFIX = "containerd.io/snapshot/"
REF_LABEL = "containerd.io/snapshot.ref"
_BACKEND_KEY = re.compile(r"^[^/]+/[0-9]+/")


def inherited_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """The labels a backend receives (containerd ``snapshots.FilterInheritedLabels``)."""
    return {k: v for k, v in labels.items() if k.startswith(INHERITED_PREFIX) or k == REF_LABEL}


def _rename(exc: errdefs.ErrdefsError, names: Mapping[str, str]) -> errdefs.ErrdefsError:
    """``exc`` with backend keys in its message replaced by the namespace's keys."""
    message = exc.message
    for backend_key, key in sorted(names.items(), key=lambda kv: -len(kv[0])):
        if backend_key:
            message = message.replace(backend_key, key)
    return type(exc)(message)


class NamespacedSnapshotter:
    """The snapshots of one namespace in one backend (see the module docstring).

    Args:
        runner: reaches the metadata database.
        backend: the snapshotter holding the trees (shared by every namespace).
        snapshotter: the backend's name (``overlayfs``): the metadata key and
            the lease resource type ``snapshots/<snapshotter>``.
        namespace: whose snapshots these are.
        lease: the call's lease: what this snapshotter creates is added to it.
    """

    def __init__(
        self,
        runner: Runner,
        backend: Snapshotter,
        snapshotter: str,
        namespace: str,
        *,
        lease: str | None = None,
    ) -> None:
        self.runner = runner
        self.backend = backend
        self.snapshotter = snapshotter
        self.namespace = namespace
        self.lease = lease
        self._closed = False

    def with_namespace(self, namespace: str, lease: str | None = None) -> NamespacedSnapshotter:
        return NamespacedSnapshotter(
            self.runner, self.backend, self.snapshotter, namespace, lease=lease
        )

    def _check_open(self) -> None:
        if self._closed:
            raise errdefs.Unavailable(f"snapshotter {self.snapshotter!r} is closed")

    def _require(self, key: str) -> tables.snapshots.SnapshotRecord:
        ns, sn = self.namespace, self.snapshotter
        return self.runner.view(lambda q: tables.snapshots.require(q, ns, sn, key))

    def _info(self, rec: tables.snapshots.SnapshotRecord, backend: Info) -> Info:
        return Info(
            kind=backend.kind,
            name=rec.key,
            parent=rec.parent,
            labels={**inherited_labels(backend.labels), **rec.labels},
            created_at=rec.created_at,
            updated_at=rec.updated_at,
        )

    def _backend_stat(self, rec: tables.snapshots.SnapshotRecord) -> Info:
        try:
            return self.backend.stat(rec.backend_key)
        except errdefs.NotFound:
            raise errdefs.NotFound(f"snapshot {rec.key} does not exist") from None

    # -- reads ---------------------------------------------------------------

    def stat(self, key: str) -> Info:
        """See :meth:`Snapshotter.stat`. Raises ``NotFound``, ``Unavailable`` (closed)."""
        self._check_open()
        rec = self._require(key)
        return self._info(rec, self._backend_stat(rec))

    def usage(self, key: str) -> Usage:
        """See :meth:`Snapshotter.usage`. Raises ``NotFound``."""
        self._check_open()
        rec = self._require(key)
        try:
            return self.backend.usage(rec.backend_key)
        except errdefs.ErrdefsError as exc:
            raise _rename(exc, {rec.backend_key: key}) from None

    def mounts(self, key: str) -> list[Mount]:
        """See :meth:`Snapshotter.mounts`. Raises ``NotFound``, ``FailedPrecondition``."""
        self._check_open()
        rec = self._require(key)
        try:
            return self.backend.mounts(rec.backend_key)
        except errdefs.ErrdefsError as exc:
            raise _rename(exc, {rec.backend_key: key}) from None

    def walk(self, filters_: Sequence[str] = ()) -> Iterator[Info]:
        """See :meth:`Snapshotter.walk`; read in full before the first item.

        Raises:
            errdefs.InvalidArgument: a filter does not parse.
        """
        self._check_open()
        match = filters.parse_all(list(filters_))
        ns, sn = self.namespace, self.snapshotter
        records = self.runner.view(lambda q: tables.snapshots.list(q, ns, sn))
        wanted = {r.backend_key for r in records}
        by_key = {i.name: i for i in self.backend.walk() if i.name in wanted}
        out: list[Info] = []
        for rec in records:
            backend = by_key.get(rec.backend_key)
            if backend is None:
                continue  # being created, or removed since the read
            info = self._info(rec, backend)
            fields = {
                "name": info.name,
                "parent": info.parent,
                "kind": info.kind.value,
                "labels": dict(info.labels),
            }
            if match.match(filters.adapt(fields)):
                out.append(info)
        return iter(out)

    # -- changes -------------------------------------------------------------

    def update(self, info: Info, paths: Sequence[str] = ()) -> Info:
        """See :meth:`Snapshotter.update`.

        Raises:
            errdefs.InvalidArgument: an empty name, a path other than
                ``labels``/``labels.<k>``, or an invalid label.
            errdefs.NotFound: no such snapshot.
        """
        self._check_open()
        if not info.name:
            raise errdefs.InvalidArgument("snapshot name must not be empty")
        ns, sn, key = self.namespace, self.snapshotter, info.name
        rec = self._require(key)
        merged = label_rules.apply_update(rec.labels, info.labels, paths, what=f"snapshot {key!r}")
        backend = self._backend_stat(rec)
        if inherited_labels(merged) != inherited_labels(backend.labels):
            inner = attrs.evolve(backend, labels=inherited_labels(merged))
            backend = self.backend.update(inner, ["labels"])
        updated = self.runner.update(
            lambda tx: tables.snapshots.set_labels(tx, ns, sn, key, merged)
        )
        return self._info(updated, backend)

    def prepare(
        self, key: str, parent: str = "", labels: Mapping[str, str] | None = None
    ) -> list[Mount]:
        """See :meth:`Snapshotter.prepare`; publishes ``/snapshot/prepare``.

        Raises:
            errdefs.InvalidArgument: an empty key, a parent not committed, an invalid label.
            errdefs.NotFound: ``parent`` does not exist, or the call's lease does not.
            errdefs.AlreadyExists: ``key`` is taken, or the ``containerd.io/snapshot.ref``
                target exists.
        """
        return self._create(Kind.ACTIVE, key, parent, labels)

    def view(
        self, key: str, parent: str = "", labels: Mapping[str, str] | None = None
    ) -> list[Mount]:
        """See :meth:`Snapshotter.view`; errors as :meth:`prepare`, no event (as containerd)."""
        return self._create(Kind.VIEW, key, parent, labels)

    def _create(
        self, kind: Kind, key: str, parent: str, labels: Mapping[str, str] | None
    ) -> list[Mount]:
        self._check_open()
        if not key:
            raise errdefs.InvalidArgument("snapshot key must not be empty")
        values = dict(labels or {})
        label_rules.validate_labels(values)
        ns, sn, lease = self.namespace, self.snapshotter, self.lease

        def reserve(tx: Transaction) -> tuple[str, str]:
            target = values.get(REF_LABEL, "")
            if target and tables.snapshots.get(tx, ns, sn, target) is not None:
                raise errdefs.AlreadyExists(f"target snapshot {quote(target)}: already exists")
            if tables.snapshots.get(tx, ns, sn, key) is not None:
                raise errdefs.AlreadyExists(f"snapshot {quote(key)}: already exists")
            backend_parent = ""
            if parent:
                prec = tables.snapshots.get(tx, ns, sn, parent)
                if prec is None:
                    raise errdefs.NotFound(f"parent snapshot {parent} does not exist")
                backend_parent = prec.backend_key
            backend_key = tables.snapshots.next_backend_key(tx, ns, sn, key)
            tables.snapshots.insert(tx, ns, sn, key, backend_key, parent, values, lease)
            return backend_key, backend_parent

        backend_key, backend_parent = self.runner.update(reserve)
        create = self.backend.prepare if kind is Kind.ACTIVE else self.backend.view
        try:
            mounts = create(backend_key, backend_parent, inherited_labels(values))
        except BaseException as exc:
            self.runner.update(lambda tx: tables.snapshots.delete(tx, ns, sn, key, lease))
            if isinstance(exc, errdefs.ErrdefsError):
                raise _rename(exc, {backend_key: key, backend_parent: parent}) from None
            raise
        if kind is Kind.ACTIVE:  # containerd publishes nothing for a view
            event = {"key": key, "parent": parent, "snapshotter": sn}
            self.runner.update(lambda tx: events.publish(tx, ns, "/snapshot/prepare", event))
        return mounts

    def commit(self, name: str, key: str, labels: Mapping[str, str] | None = None) -> None:
        """See :meth:`Snapshotter.commit`; publishes ``/snapshot/commit``.

        Checked in containerd's order: ``name`` taken (``AlreadyExists``), ``key``
        missing (``NotFound``), ``key`` not active (``FailedPrecondition``, from
        the backend).

        Raises:
            errdefs.InvalidArgument: an empty name, an invalid label.
            errdefs.AlreadyExists: ``name`` is taken.
            errdefs.NotFound: ``key`` does not exist, or the call's lease does not.
            errdefs.FailedPrecondition: ``key`` is a view or committed.
        """
        self._check_open()
        if not name:
            raise errdefs.InvalidArgument("snapshot name must not be empty")
        values = dict(labels or {})
        label_rules.validate_labels(values)
        ns, sn, lease = self.namespace, self.snapshotter, self.lease

        def reserve(tx: Transaction) -> tuple[str, str]:
            if tables.snapshots.get(tx, ns, sn, name) is not None:
                raise errdefs.AlreadyExists(f"snapshot {quote(name)}: already exists")
            rec = tables.snapshots.require(tx, ns, sn, key)
            name_key = tables.snapshots.next_backend_key(tx, ns, sn, name)
            tables.snapshots.insert(tx, ns, sn, name, name_key, rec.parent, values, lease)
            return name_key, rec.backend_key

        name_key, backend_key = self.runner.update(reserve)
        try:
            self.backend.commit(name_key, backend_key, inherited_labels(values))
        except BaseException as exc:
            self.runner.update(lambda tx: tables.snapshots.delete(tx, ns, sn, name, lease))
            if isinstance(exc, errdefs.ErrdefsError):
                raise _rename(exc, {name_key: name, backend_key: key}) from None
            raise

        def finish(tx: Transaction) -> None:
            tables.snapshots.delete(tx, ns, sn, key, lease)
            event = {"key": key, "name": name, "snapshotter": sn}
            events.publish(tx, ns, "/snapshot/commit", event)

        self.runner.update(finish)

    def remove(self, key: str) -> None:
        """See :meth:`Snapshotter.remove`; publishes ``/snapshot/remove``.

        The metadata row goes first (the key is free at once); then the backend
        snapshot. Should that fail, the collector removes it later.

        Raises:
            errdefs.NotFound: no such snapshot.
            errdefs.FailedPrecondition: ``cannot remove snapshot with child``.
        """
        self._check_open()
        ns, sn, lease = self.namespace, self.snapshotter, self.lease

        def drop(tx: Transaction) -> str:
            rec = tables.snapshots.require(tx, ns, sn, key)
            if tables.snapshots.has_children(tx, ns, sn, key):
                raise errdefs.FailedPrecondition("cannot remove snapshot with child")
            tables.snapshots.delete(tx, ns, sn, key, lease)
            events.publish(tx, ns, "/snapshot/remove", {"key": key, "snapshotter": sn})
            return rec.backend_key

        backend_key = self.runner.update(drop)
        try:
            self.backend.remove(backend_key)
        except errdefs.NotFound:
            pass
        except errdefs.ErrdefsError as exc:
            log.warning("snapshot %s left for the collector: %s", backend_key, exc)

    def cleanup(self) -> None:
        """Reclaim the disk space of removed snapshots (the backend's ``Cleanup``)."""
        self._check_open()
        self.backend.cleanup()

    def close(self) -> None:
        """Idempotent; the backend stays open (other namespaces share it)."""
        self._closed = True


def _remove_until_stuck(backend: Snapshotter, backend_keys: set[str]) -> set[str]:
    """Remove what can be, children before parents; the keys that could not be."""
    pending = set(backend_keys)
    progress = True
    while pending and progress:
        progress = False
        for backend_key in sorted(pending, reverse=True):
            try:
                backend.remove(backend_key)
            except errdefs.NotFound:
                pass
            except errdefs.FailedPrecondition:
                continue  # a child is still there: next round
            pending.discard(backend_key)
            progress = True
    return pending


def collect_snapshots(
    runner: Runner,
    backends: Mapping[str, Snapshotter],
    removed: Sequence[tuple[str, str, str, str]],
    *,
    orphans: bool = True,
) -> list[str]:
    """Remove from the backends what a collection swept from the metadata.

    For each snapshotter: the swept backend keys (children first: removal is
    retried while it makes progress), then, with ``orphans``, every backend
    key of the ``<ns>/<seq>/<key>`` form that no row maps any more (left by a
    remove whose backend half failed, or by a crash), then the backend's
    ``cleanup``. Runs in the collector's worker thread.

    Returns:
        The backend keys that could not be removed (logged).
    """
    by_snapshotter: dict[str, set[str]] = {}
    for _, sn, _, backend_key in removed:
        by_snapshotter.setdefault(sn, set()).add(backend_key)
    stuck: list[str] = []
    for sn, backend in backends.items():
        wanted = by_snapshotter.get(sn, set())
        if orphans:
            listed = [i.name for i in backend.walk() if _BACKEND_KEY.match(i.name)]
            live: set[str] = runner.view(_live_keys(sn))
            wanted |= {k for k in listed if k not in live}
        if not wanted:
            continue
        left = _remove_until_stuck(backend, wanted)
        for backend_key in sorted(left):
            log.warning("snapshot %s of %s could not be removed", backend_key, sn)
        stuck.extend(sorted(left))
        backend.cleanup()
    return stuck


def _live_keys(sn: str) -> Callable[..., set[str]]:
    return lambda q: tables.snapshots.backend_keys(q, sn)


def repair_snapshots(runner: Runner, backends: Mapping[str, Snapshotter]) -> list[tuple[str, str]]:
    """Drop the rows whose backend snapshot does not exist; run before serving.

    A crash between a change's first transaction and its backend step leaves
    such a row (a reserved key whose prepare never ran, the name of a commit
    that never ran, or the key of a commit that did): it would keep its key
    taken for nothing. With no call in flight, a row without its backend
    snapshot is always such a leftover. Rows of snapshotters not loaded are
    left alone.

    Returns:
        ``(namespace, key)`` of each row dropped (logged).
    """
    dropped: list[tuple[str, str]] = []
    for sn, backend in backends.items():
        present = {i.name for i in backend.walk()}

        def drop(
            tx: Transaction, sn: str = sn, present: set[str] = present
        ) -> list[tuple[str, str]]:
            rows = tx.execute(
                "SELECT namespace, key, backend_key FROM snapshots WHERE snapshotter = ?", (sn,)
            ).fetchall()
            gone = [(ns, key) for ns, key, backend_key in rows if backend_key not in present]
            for ns, key in gone:
                tables.snapshots.delete(tx, ns, sn, key, None)
            return gone

        for ns, key in runner.update(drop):
            log.warning("snapshot %s of %s in %s had no backend snapshot: dropped", key, sn, ns)
            dropped.append((ns, key))
    return dropped
