"""The snapshotter interface (containerd ``snapshots/snapshotter.go``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Protocol

from pycontainerd.api.snapshot_values import Info as Info
from pycontainerd.api.snapshot_values import Kind as Kind
from pycontainerd.api.snapshot_values import Usage as Usage
from pycontainerd.api.types import Mount

__all__ = ["Info", "Kind", "Snapshotter", "Usage"]


class Snapshotter(Protocol):
    """Allocates filesystem trees stacked on each other: container root filesystems.

    containerd's vocabulary, kept here exactly:

    * A snapshot is *active* (``prepare``: writable), a *view* (``view``:
      read-only) or *committed* (``commit``: immutable, a parent for others).
    * Active snapshots and views are addressed by a ``key``, committed ones by
      a ``name``. Keys and names share **one key space**, and are arbitrary
      strings (containerd's test suite uses absolute paths as keys).
    * A ``parent`` is always the name of a committed snapshot (or ``""`` for an
      empty tree). A snapshot's contents are its parent's plus its own
      changes; committing keeps the parent.
    * Nothing is mounted by the snapshotter: ``prepare``, ``view`` and
      ``mounts`` return :class:`~pycontainerd.api.types.Mount` records for
      the caller to apply (:func:`pycontainerd.mount.mount_all`).

    Unpacking a two-layer image, by hand::

        mounts = sn.prepare("extract-1 sha256:l1", "")        # empty, writable
        with mount.with_temp_mount(mounts) as root:
            apply_tar(root, layer1)                           # the differ's job
        sn.commit("sha256:l1", "extract-1 sha256:l1")         # l1 is committed

        mounts = sn.prepare("extract-2 sha256:l2", "sha256:l1")
        with mount.with_temp_mount(mounts) as root:
            apply_tar(root, layer2)                           # on top of l1
        sn.commit("sha256:l2", "extract-2 sha256:l2")         # parent: sha256:l1

        rootfs = sn.prepare("ctr-1", "sha256:l2")             # a container's rootfs
        ro = sn.view("ctr-1-ro", "sha256:l2")                 # or a read-only one

    ``remove`` works on any kind, but not on a snapshot that has children:
    remove from the top down.
    """

    def stat(self, key: str) -> Info:
        """Information on an active snapshot, view or committed snapshot.

        Raises:
            errdefs.NotFound: no snapshot has this key or name.
        """
        ...

    def update(self, info: Info, paths: Sequence[str] = ()) -> Info:
        """Change the labels of ``info.name``; only labels are mutable.

        Args:
            info: the snapshot (by ``info.name``) and the new labels.
            paths: ``()`` or ``("labels",)`` replace every label;
                ``"labels.<k>"`` sets ``k`` from ``info.labels``, or deletes it
                when ``info.labels`` has no (or an empty) value for it.

        Returns:
            The stored information after the update (``updated_at`` bumped).

        Raises:
            errdefs.NotFound: no such snapshot.
            errdefs.InvalidArgument: a path names an immutable field
                (``name``, ``parent``, ``kind``, ``created_at``...) or a label
                is invalid.
        """
        ...

    def usage(self, key: str) -> Usage:
        """Disk usage of the snapshot (active: scanned now; committed: recorded at commit).

        Raises:
            errdefs.NotFound: no such snapshot.
        """
        ...

    def mounts(self, key: str) -> list[Mount]:
        """The mounts of an active snapshot or view (again, as ``prepare`` gave them).

        Raises:
            errdefs.NotFound: no such snapshot.
            errdefs.FailedPrecondition: the snapshot is committed.
        """
        ...

    def prepare(
        self, key: str, parent: str = "", labels: Mapping[str, str] | None = None
    ) -> list[Mount]:
        """Create the active snapshot ``key`` on top of ``parent``.

        Raises:
            errdefs.NotFound: ``parent`` does not exist.
            errdefs.InvalidArgument: ``parent`` is not committed, or a label is invalid.
            errdefs.AlreadyExists: ``key`` is taken (by any kind).
        """
        ...

    def view(
        self, key: str, parent: str = "", labels: Mapping[str, str] | None = None
    ) -> list[Mount]:
        """Create the read-only view ``key`` of ``parent``; it can never be committed.

        Raises:
            errdefs.NotFound: ``parent`` does not exist.
            errdefs.InvalidArgument: ``parent`` is not committed, or a label is invalid.
            errdefs.AlreadyExists: ``key`` is taken.
        """
        ...

    def commit(self, name: str, key: str, labels: Mapping[str, str] | None = None) -> None:
        """Turn the active snapshot ``key`` into the committed snapshot ``name``.

        ``key`` is gone afterwards; ``name`` has ``key``'s parent, the given
        labels, new timestamps, and its usage recorded.

        Raises:
            errdefs.NotFound: ``key`` does not exist.
            errdefs.FailedPrecondition: ``key`` is a view or committed.
            errdefs.AlreadyExists: ``name`` is taken.
            errdefs.InvalidArgument: a label is invalid.
        """
        ...

    def remove(self, key: str) -> None:
        """Remove a snapshot of any kind; the key is reusable at once.

        Raises:
            errdefs.NotFound: no such snapshot.
            errdefs.FailedPrecondition: "cannot remove snapshot with child".
        """
        ...

    def walk(self, filters: Sequence[str] = ()) -> Iterator[Info]:
        """Every snapshot matching any of ``filters``, in key order.

        Filter fields: ``name``, ``parent``, ``kind`` (``active``, ``view``,
        ``committed``) and ``labels.<k>`` (containerd's filter grammar).
        The snapshots are read before the first one is yielded, so the caller
        may call other methods (``stat``) while iterating.

        Raises:
            errdefs.InvalidArgument: a filter does not parse.
        """
        ...

    def cleanup(self) -> None:
        """Reclaim the disk space of removed snapshots (containerd ``Cleaner``)."""
        ...

    def close(self) -> None:
        """Release the metadata store; idempotent. Other calls then raise ``Unavailable``."""
        ...
