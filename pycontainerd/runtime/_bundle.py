"""Task bundles on disk (containerd ``runtime/v2/bundle.go``).

::

    <state>/io.containerd.runtime.v2.task/<ns>/<id>/     0700, the bundle (runc's cwd)
        config.json        the OCI spec
        rootfs/            0711, the container's mounts stacked here
        work -> <root>/io.containerd.runtime.v2.task/<ns>/<id>   persistent work dir
        address            the shim's socket (written by the shim)
        shim-binary-path   how to run the shim's ``delete`` after a crash
        exits/             one file per exited process (the shim's record)

State is volatile (``/run``); ``work`` survives reboots. Deleting a bundle
unmounts its rootfs, renames it to ``.<id>`` (so a crash half-way leaves a
dot-dir that recovery skips) and removes it, then its work dir.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from pycontainerd import mount
from pycontainerd.api import errdefs, identifiers
from pycontainerd.api.types import Mount

TASK_PLUGIN = "io.containerd.runtime.v2.task"
"""containerd's plugin directory name for runtime v2 tasks."""


@attrs.frozen(kw_only=True)
class Bundle:
    """One task's bundle: ``path`` (state) and ``work_dir`` (root)."""

    namespace: str
    id: str
    path: str
    work_dir: str

    @property
    def state_dir(self) -> str:
        """The daemon's state directory the bundle lives in (``<state>/<plugin>/<ns>/<id>``)."""
        return os.path.dirname(os.path.dirname(os.path.dirname(self.path)))

    @property
    def rootfs(self) -> str:
        return os.path.join(self.path, "rootfs")

    @property
    def config_path(self) -> str:
        return os.path.join(self.path, "config.json")

    def read_spec(self) -> dict[str, Any]:
        """The bundle's ``config.json``.

        Raises:
            errdefs.NotFound: the bundle has no spec.
        """
        try:
            with open(self.config_path, "rb") as f:
                doc = json.loads(f.read())
        except FileNotFoundError:
            raise errdefs.NotFound(f"bundle {self.path!r} has no config.json") from None
        except ValueError as exc:
            raise errdefs.DataLoss(f"bundle {self.path!r}: config.json: {exc}") from None
        if not isinstance(doc, dict):
            raise errdefs.DataLoss(f"bundle {self.path!r}: config.json is not an object")
        return doc

    def delete(self) -> None:
        """Unmount the rootfs and remove the bundle and its work dir.

        Raises:
            errdefs.Unavailable: the rootfs stays busy (nothing is removed then).
        """
        delete_bundle_path(self.path, self.id)
        shutil.rmtree(self.work_dir, ignore_errors=True)


def task_dir(base: str | os.PathLike[str], namespace: str, id: str = "") -> str:
    path = os.path.join(os.fspath(base), TASK_PLUGIN, namespace)
    return os.path.join(path, id) if id else path


def load_bundle(state_dir: str, root_dir: str, namespace: str, id: str) -> Bundle:
    """The bundle of task ``namespace``/``id``.

    Raises:
        errdefs.NotFound: there is none.
    """
    path = task_dir(state_dir, namespace, id)
    if not os.path.isdir(path):
        raise errdefs.NotFound(f"bundle for {namespace}/{id} not found")
    return Bundle(namespace=namespace, id=id, path=path, work_dir=task_dir(root_dir, namespace, id))


def new_bundle(
    state_dir: str,
    root_dir: str,
    namespace: str,
    id: str,
    spec: Mapping[str, Any] | bytes,
    rootfs: Sequence[Mount] = (),
) -> Bundle:
    """Create the bundle of a new task and mount its rootfs (containerd ``NewBundle``).

    Args:
        state_dir: the daemon's state directory (``/run/pycontainerd``).
        root_dir: the daemon's root directory (``/var/lib/pycontainerd``).
        spec: the OCI spec, as a map or as ``config.json`` bytes.
        rootfs: mounts stacked on ``rootfs/`` in order (none: the spec's
            ``root.path`` is used as it is).

    Raises:
        errdefs.InvalidArgument: ``namespace`` or ``id`` is not an identifier.
        errdefs.AlreadyExists: the task already has a bundle.
        errdefs.ErrdefsError: as :func:`pycontainerd.mount.mount`; nothing is
            left behind then.
    """
    identifiers.validate(namespace)
    identifiers.validate(id)
    parent = task_dir(state_dir, namespace)
    work_parent = task_dir(root_dir, namespace)
    os.makedirs(parent, mode=0o711, exist_ok=True)
    os.makedirs(work_parent, mode=0o711, exist_ok=True)
    path = os.path.join(parent, id)
    work = os.path.join(work_parent, id)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        raise errdefs.AlreadyExists(f"bundle for {namespace}/{id} already exists") from None
    bundle = Bundle(namespace=namespace, id=id, path=path, work_dir=work)
    try:
        os.makedirs(work, mode=0o711, exist_ok=True)
        os.mkdir(bundle.rootfs, 0o711)
        os.symlink(work, os.path.join(path, "work"))
        data = spec if isinstance(spec, bytes) else json.dumps(spec).encode()
        with open(bundle.config_path, "wb") as f:
            f.write(data)
        if rootfs:
            mount.mount_all(rootfs, bundle.rootfs)
    except BaseException:
        mount.unmount_all(bundle.rootfs, mount.MNT_DETACH)
        shutil.rmtree(path, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
        raise
    return bundle


def delete_bundle_path(path: str, id: str) -> None:
    """Unmount ``path/rootfs``, rename ``path`` to ``.<id>`` and remove it.

    Raises:
        errdefs.ErrdefsError: the rootfs cannot be unmounted.
    """
    if not os.path.lexists(path):
        return
    mount.unmount_all(os.path.join(path, "rootfs"), mount.MNT_DETACH)
    hidden = os.path.join(os.path.dirname(path), f".{id}")
    shutil.rmtree(hidden, ignore_errors=True)
    os.rename(path, hidden)
    shutil.rmtree(hidden)
