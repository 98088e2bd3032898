"""Recovering tasks after a daemon restart (containerd ``shim_load.go``).

For every ``<state>/io.containerd.runtime.v2.task/<ns>/<id>`` (dot-dirs are
half-deleted bundles and skipped):

1. a bundle without ``config.json`` is removed;
2. its shim is connected through ``address`` and asked ``connect`` within
   ``connect_timeout``: a live shim is returned ``live`` with its client,
   whatever its task's state (created, running, paused, or stopped: a task
   that ended while the daemon was down stays, as containerd's, until
   ``tasks.delete``);
3. a live shim whose task is gone (the daemon died inside ``tasks.delete``,
   after the shim's delete) is shut down and the bundle removed: ``deleted``;
4. a shim that does not answer is dead: its ``delete`` cleanup runs (it
   force-deletes the container) and the bundle is removed: ``dead``
   (containerd's ``cleanupAfterDeadShim``).

``deleted`` and ``dead`` tasks carry the exit to publish once: the shim's exit
file when it wrote one (the dead-shim cleanup records its answer there too,
so a cleanup run twice answers the same exit), else the cleanup's answer,
else 255 now. Work dirs without a bundle are removed last.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from datetime import UTC, datetime
from typing import Literal

import attrs

from pycontainerd.api import errdefs
from pycontainerd.shim import read_exit_file

from ._bundle import TASK_PLUGIN, Bundle, delete_bundle_path, load_bundle
from ._shim import ShimClient, delete_shim, record_exit

log = logging.getLogger("pycontainerd.tasks")

DEAD_SHIM_EXIT_STATUS = 255
"""A dead shim's exit status when its cleanup failed (containerd's)."""


@attrs.frozen(kw_only=True)
class LoadedTask:
    """A task found in the state directory.

    ``shim`` is set for ``live`` tasks (the caller owns and closes it);
    ``exit_status``/``exited_at``/``pid`` describe how a ``deleted`` or
    ``dead`` task ended when ``known`` (a ``deleted`` task without an exit
    file has nothing left to publish).
    """

    state: Literal["live", "deleted", "dead"]
    bundle: Bundle
    shim: ShimClient | None = None
    pid: int = 0
    exit_status: int = 0
    exited_at: datetime | None = None
    known: bool = False


def _recorded(bundle: Bundle) -> tuple[int, int, datetime] | None:
    record = read_exit_file(bundle.path)
    if record is None:
        return None
    at = datetime.fromtimestamp(int(record.get("exited_at", 0)) / 1e9, tz=UTC)
    return int(record.get("pid", 0)), int(record.get("exit_status", 0)), at


def _connect(bundle: Bundle, timeout: float) -> ShimClient | None:
    try:
        with open(os.path.join(bundle.path, "address")) as f:
            address = f.read().strip()
    except OSError:
        return None
    try:
        shim = ShimClient(address, bundle.id, timeout=timeout)
    except errdefs.ErrdefsError:
        return None
    try:
        shim.connect()
    except errdefs.ErrdefsError:
        shim.close()
        return None
    return shim


def _task_gone(shim: ShimClient) -> bool:
    """Whether the shim's task was deleted already (or never created)."""
    try:
        shim.state()
    except errdefs.NotFound:
        return True
    except errdefs.ErrdefsError:
        return False
    return False


def _remove(bundle: Bundle) -> None:
    """Remove the bundle; one that stays (a busy rootfs) is retried at the next start."""
    try:
        bundle.delete()
    except (errdefs.ErrdefsError, OSError) as exc:
        log.warning("task %s/%s: bundle not removed: %s", bundle.namespace, bundle.id, exc)


def _load_one(bundle: Bundle, timeout: float) -> LoadedTask | None:
    if not os.path.exists(bundle.config_path):
        delete_bundle_path(bundle.path, bundle.id)
        return None
    shim = _connect(bundle, timeout)
    if shim is not None:
        if not _task_gone(shim):
            return LoadedTask(state="live", bundle=bundle, shim=shim)
        with contextlib.suppress(errdefs.ErrdefsError):
            shim.shutdown(now=True)
        shim.close()
        recorded = _recorded(bundle)
        _remove(bundle)
        if recorded is None:
            return LoadedTask(state="deleted", bundle=bundle)
        pid, status, at = recorded
        return LoadedTask(
            state="deleted", bundle=bundle, pid=pid, exit_status=status, exited_at=at, known=True
        )
    try:
        # the shim's delete records its answer as the exit when none was recorded
        deleted = delete_shim(bundle)
        pid, status = deleted.pid, deleted.exit_status
        at = deleted.exited_at or datetime.now(UTC)
    except errdefs.ErrdefsError as exc:
        log.warning("task %s/%s: dead shim cleanup failed: %s", bundle.namespace, bundle.id, exc)
        pid, status, at = 0, DEAD_SHIM_EXIT_STATUS, datetime.now(UTC)
        with contextlib.suppress(OSError):
            record_exit(bundle, pid, status, at)
    recorded = _recorded(bundle)
    if recorded is not None:
        pid, status, at = recorded
    _remove(bundle)
    return LoadedTask(
        state="dead", bundle=bundle, pid=pid, exit_status=status, exited_at=at, known=True
    )


def load_existing(
    state_dir: str, root_dir: str, *, connect_timeout: float = 5.0
) -> list[LoadedTask]:
    """Every task of the state directory, live ones reconnected, the others cleaned.

    Args:
        state_dir: the daemon's state directory (bundles under
            ``io.containerd.runtime.v2.task``).
        root_dir: the daemon's root directory (work dirs).
        connect_timeout: how long a shim has to answer ``connect``
            (containerd's ``io.containerd.timeout.shim.load``, 5 s).

    Returns:
        The tasks found, namespace by namespace, in name order.
    """
    tasks: list[LoadedTask] = []
    base = os.path.join(state_dir, TASK_PLUGIN)
    loaded: set[tuple[str, str]] = set()
    for namespace in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        ns_dir = os.path.join(base, namespace)
        if namespace.startswith(".") or not os.path.isdir(ns_dir):
            continue
        for id in sorted(os.listdir(ns_dir)):
            if id.startswith("."):
                continue
            task = _load_one(load_bundle(state_dir, root_dir, namespace, id), connect_timeout)
            if task is not None:
                tasks.append(task)
                if task.state == "live":
                    loaded.add((namespace, id))
    work_base = os.path.join(root_dir, TASK_PLUGIN)
    for namespace in os.listdir(work_base) if os.path.isdir(work_base) else []:
        ns_dir = os.path.join(work_base, namespace)
        for id in os.listdir(ns_dir) if os.path.isdir(ns_dir) else []:
            if (namespace, id) not in loaded:
                shutil.rmtree(os.path.join(ns_dir, id), ignore_errors=True)
    return tasks
