"""What must hold after every kill, checked from outside the daemon.

Each check reads the daemon's stores over the socket (and the content store's
files, ``/proc``, the mount table and the cgroup tree directly) and returns
:class:`Violation` records instead of raising, so that a long run counts every
broken invariant and keeps going:

- :func:`blobs`: every committed blob file hashes to its name, and every blob
  the metadata lists has its file, of its size;
- :func:`images`: every image's content is there and its unpack is whole (the
  config's ``containerd.io/gc.ref.snapshot.<sn>`` label names the top of a
  chain of committed snapshots whose parents are the image's chain IDs);
- :func:`containers`: every container's snapshot exists;
- :func:`tasks`: a task listed running has a live process, one listed
  stopped has none and has its exit journalled; the tasks that were running
  before the kill still run, with the same pid;
- :class:`Journal`: every exit journalled at most once (``since=0``, counted
  per namespace, container, process and pid), the exits seen by a client
  exactly once;
- :func:`gone`: a task that is gone left no shim, mount or cgroup.
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import attrs

from pycontainerd import images as oci_images
from pycontainerd.api import errdefs
from pycontainerd.api.content_values import Info as ContentInfo
from pycontainerd.api.snapshot_values import Kind
from pycontainerd.client import Client
from pycontainerd.runtime import TASK_PLUGIN
from tests.integration import leaks
from tests.integration.daemon import DaemonProcess

SNAPSHOTTER = "overlayfs"
GC_REF_SNAPSHOT = "containerd.io/gc.ref.snapshot."
MARK_TOPIC = "/chaos/mark"

# likely owners, as the issue splits the work
CONTENT = "content store (content/_local.py, actors/content.py: unowned)"
TRANSFER = "transfer/unpack (transfer/*: unowned)"
SNAPSHOTS = "containers/snapshots (metadata/tables/containers.py, actors/snapshots.py: unowned)"
SHIM = "shim (actors/task_actor.py, actors/tasks.py, runtime/*, shim/*)"
EVENTS = "events (metadata/events.py, actors/events.py)"
DAEMON = "daemon start/recovery (daemon/_run.py)"


@attrs.frozen
class Violation:
    """One broken invariant: at which kill point, what, and whose code it likely is."""

    kill_point: str
    what: str
    owner: str

    def __str__(self) -> str:
        return f"[{self.kill_point}] {self.what} (owner: {self.owner})"


ExitKey = tuple[str, str, str, int]
"""``(namespace, container_id, id, pid)`` of a ``/tasks/exit`` (``id``: the
exec id, the container id for the init process)."""


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(") ", 1)[1][:1] != "Z"


def dead(pid: int) -> bool:
    return not pid_alive(pid)


def wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


def blobs(d: DaemonProcess, namespaces: Iterable[str], seen: Counter[str]) -> list[str]:
    """Committed blob files that are not their digest; listed blobs without their file.

    The collector may remove a blob while this runs: a file gone before it is
    read is skipped, and a listed blob whose file is missing counts only if the
    metadata still lists it afterwards.
    """
    found: list[str] = []
    listed: dict[str, list[ContentInfo]] = {}
    for ns in namespaces:
        with Client(d.address, namespace=ns, timeout=30) as c:
            listed[ns] = c.content.walk()
    blob_dir = d.root / "io.containerd.content.v1.content" / "blobs" / "sha256"
    on_disk: dict[str, int] = {}
    for path in sorted(blob_dir.iterdir()) if blob_dir.is_dir() else []:
        h = hashlib.sha256()
        try:
            with path.open("rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
                on_disk[path.name] = os.fstat(f.fileno()).st_size
        except FileNotFoundError:
            continue  # collected meanwhile
        seen["blob files hashed"] += 1
        if h.hexdigest() != path.name:
            found.append(f"blob file {path.name} hashes to {h.hexdigest()}")
    for ns, infos in listed.items():
        with Client(d.address, namespace=ns, timeout=30) as c:
            for info in infos:
                hex = info.digest.removeprefix("sha256:")
                if hex not in on_disk:
                    try:
                        c.content.info(info.digest)
                    except errdefs.NotFound:
                        continue  # collected meanwhile
                    found.append(f"{ns}: content lists {info.digest}, its blob file is missing")
                elif on_disk[hex] != info.size:
                    found.append(
                        f"{ns}: content lists {info.digest} of {info.size} bytes, "
                        f"its file has {on_disk[hex]}"
                    )
    return found


def images(c: Client, seen: Counter[str]) -> list[str]:
    """Images whose content is missing or whose unpack is not a whole committed chain."""
    found: list[str] = []
    sn = c.snapshots(SNAPSHOTTER)
    for record in c.images.list():
        image = c.image(record.name)
        try:
            _, manifest = image.manifest()
            config = oci_images.ImageConfig.parse(image.read_blob(manifest.config))
            for layer in manifest.layers:
                c.content.info(layer.digest)
            labels = c.content.info(manifest.config.digest).labels
        except errdefs.NotFound as exc:
            found.append(f"{c.namespace}: image {record.name}: content missing: {exc}")
            continue
        chain = oci_images.chain_ids(config.diff_ids)
        seen["image chains checked"] += 1
        top = labels.get(GC_REF_SNAPSHOT + SNAPSHOTTER)
        if top is None:
            found.append(f"{c.namespace}: image {record.name} saved without its unpack recorded")
            continue
        if chain and top != chain[-1]:
            found.append(f"{c.namespace}: image {record.name}: unpacked to {top}, not {chain[-1]}")
        parent = ""
        for i, name in enumerate(chain):
            try:
                info = sn.stat(name)
            except errdefs.NotFound:
                found.append(f"{c.namespace}: image {record.name}: snapshot {i} ({name}) missing")
                break
            if info.kind is not Kind.COMMITTED or info.parent != parent:
                found.append(
                    f"{c.namespace}: image {record.name}: snapshot {i} is {info.kind.value} "
                    f"with parent {info.parent!r}, expected committed on {parent!r}"
                )
            parent = name
    return found


def containers(c: Client, seen: Counter[str]) -> list[str]:
    """Containers whose snapshot is missing."""
    found: list[str] = []
    for record in c.containers.list():
        if not record.snapshot_key:
            continue
        seen["container snapshots checked"] += 1
        try:
            c.snapshots(record.snapshotter or SNAPSHOTTER).stat(record.snapshot_key)
        except errdefs.NotFound:
            found.append(
                f"{c.namespace}: container {record.id} references missing snapshot "
                f"{record.snapshot_key}"
            )
    return found


def list_tasks(c: Client) -> dict[str, tuple[str, int]]:
    """``container id → (status, pid)`` of the namespace's tasks."""
    resp = c.call("tasks.list", {}, namespace=c.namespace)
    return {t["id"]: (t["status"], int(t["pid"])) for t in resp.get("tasks", [])}


def tasks(
    c: Client,
    listed: Mapping[str, tuple[str, int]],
    expected_running: Mapping[str, int],
    seen: Counter[str],
) -> list[str]:
    """A listed task's status against its process; the tasks that must still run."""
    found: list[str] = []
    seen["task states checked"] += len(listed)
    seen["running tasks kept"] += len(expected_running)
    for cid, (status, pid) in listed.items():
        if status == "running" and not pid_alive(pid):
            found.append(f"{c.namespace}: task {cid} listed running, its process {pid} is gone")
        if status == "stopped" and pid and not wait_for(functools.partial(dead, pid), 3):
            found.append(f"{c.namespace}: task {cid} listed stopped, its process {pid} still runs")
    for cid, pid in expected_running.items():
        status, now = listed.get(cid, ("missing", 0))
        if status != "running" or now != pid:
            found.append(
                f"{c.namespace}: task {cid} (pid {pid}) was running before the kill, "
                f"now {status} (pid {now})"
            )
    return found


def gone(d: DaemonProcess, namespace: str, cid: str, timeout: float = 5.0) -> list[str]:
    """What a task that no longer exists left behind: shim, mounts, cgroups."""
    bundle = d.state / TASK_PLUGIN / namespace / cid

    def left() -> list[str]:
        found = [f"shim {pid}" for pid in leaks.shim_processes(f"-bundle\0{bundle}\0")]
        found += [f"mount {m}" for m in leaks.mounts_under(bundle)]
        found += [f"cgroup {g}" for g in leaks.task_cgroups() if g.endswith(f"/{namespace}/{cid}")]
        return found

    wait_for(lambda: not left(), timeout, 0.1)
    return [f"{namespace}: task {cid} is gone but left {x}" for x in left()]


@attrs.define
class Journal:
    """The task lifecycle events of the whole journal: ``/tasks/create``,
    ``/tasks/start``, ``/tasks/exit`` and ``/tasks/delete``."""

    exits: Counter[ExitKey] = attrs.field(factory=Counter)
    statuses: dict[ExitKey, list[int]] = attrs.field(factory=dict)
    deletes: Counter[tuple[str, str, int]] = attrs.field(factory=Counter)
    created: set[tuple[str, str]] = attrs.field(factory=set)
    """``(namespace, container)`` of every ``/tasks/create``."""
    started: dict[tuple[str, str], int] = attrs.field(factory=dict)
    """``(namespace, container)`` → init pid of every ``/tasks/start``."""

    def read(self, c: Client, timeout: float = 30.0) -> None:
        """Replay the journal from ``since=0`` up to a mark published now.

        Raises:
            errdefs.DeadlineExceeded: the mark did not come back in ``timeout``.
        """
        token = uuid.uuid4().hex
        c.publish(MARK_TOPIC, {"token": token})
        filters = [
            'topic=="/tasks/create"',
            'topic=="/tasks/start"',
            'topic=="/tasks/exit"',
            'topic=="/tasks/delete"',
            f'topic=="{MARK_TOPIC}",event.token=="{token}"',
        ]
        exits: Counter[ExitKey] = Counter()
        statuses: dict[ExitKey, list[int]] = {}
        deletes: Counter[tuple[str, str, int]] = Counter()
        created: set[tuple[str, str]] = set()
        started: dict[tuple[str, str], int] = {}
        deadline = time.monotonic() + timeout
        for env in c.subscribe(filters, since=0):
            if env.topic == MARK_TOPIC:
                break
            e = env.event
            task = (env.namespace, str(e.get("container_id")))
            if env.topic == "/tasks/exit":
                key = (*task, str(e.get("id")), int(e["pid"]))
                exits[key] += 1
                statuses.setdefault(key, []).append(int(e.get("exit_status") or 0))
            elif env.topic == "/tasks/delete":
                deletes[(*task, int(e.get("pid") or 0))] += 1
            elif env.topic == "/tasks/create":
                created.add(task)
            else:
                started[task] = int(e.get("pid") or 0)
            if time.monotonic() > deadline:
                raise errdefs.DeadlineExceeded(f"journal replay: no mark after {timeout}s")
        self.exits, self.statuses, self.deletes = exits, statuses, deletes
        self.created, self.started = created, started

    def ended(self, namespace: str, cid: str) -> list[str]:
        """What is missing from the events of a task that is gone: a task whose
        create was journalled has exactly one ``/tasks/delete``; one whose start
        was journalled, exactly one exit of its init process."""
        found: list[str] = []
        task = (namespace, cid)
        if task in self.created and (n := self.deleted(namespace, cid)) != 1:
            found.append(f"{namespace}: task {cid} is gone, /tasks/delete journalled {n}x")
        if task in self.started:
            pid = self.started[task]
            if (n := self.count(namespace, cid, cid, pid)) != 1:
                found.append(f"{namespace}: task {cid} is gone, exit of pid {pid} journalled {n}x")
        return found

    def twice(self) -> list[str]:
        """Exits journalled more than once."""
        return [
            f"{ns}: exit of {cid}/{id} pid {pid} journalled {n} times "
            f"(statuses {self.statuses[(ns, cid, id, pid)]})"
            for (ns, cid, id, pid), n in sorted(self.exits.items())
            if n > 1
        ]

    def count(self, namespace: str, cid: str, id: str, pid: int) -> int:
        return self.exits[(namespace, cid, id, pid)]

    def deleted(self, namespace: str, cid: str) -> int:
        """``/tasks/delete`` events of ``cid`` (any pid)."""
        return sum(n for (ns, c, _), n in self.deletes.items() if ns == namespace and c == cid)
