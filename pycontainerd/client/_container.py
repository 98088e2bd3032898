"""Containers as the Go client has them: ``client.new_container`` → :class:`Container`.

    ctr = c.new_container("web", image=c.image("busybox:1"), args=["httpd", "-f"],
                          spec_opts=[oci.with_memory_limit(64 << 20)])
    task = ctr.new_task(cio.log_file("/var/log/web.log"))
    ...
    ctr.delete()                  # its snapshot too (snapshot_cleanup=True)

``new_container`` with an image unpacks it when needed, prepares an active
snapshot named after the container from the image's top chain ID
(``WithNewSnapshot``), builds the spec from :func:`pycontainerd.oci.default_spec`,
the image config and the options (``WithNewSpec(WithImageConfig, ...)``) and
creates the container, all under a lease held while it runs (``WithLease``):
once created, the container holds its snapshot.
"""

from __future__ import annotations

import builtins
import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from pycontainerd.api import containers as api
from pycontainerd.api import errdefs

from ._containers import Containers
from ._session import Session

if TYPE_CHECKING:
    from pycontainerd.oci import SpecOpt

    from . import cio
    from ._tasks import Task
    from ._transfer import Image

DEFAULT_RUNTIME = "io.containerd.runc.v2"
STOP_SIGNAL_LABEL = "io.containerd.image.config.stop-signal"


class ContainerSession(Session, Protocol):
    """What a :class:`Container` uses of its client: a :class:`Session` with
    the container store and the local images."""

    @property
    def containers(self) -> ContainerStore: ...

    def image(self, name: str, platform: str = "") -> Image: ...


class Container:
    """A container of the client's namespace (the Go client's ``Container``).

    Args:
        client: the client.
        record: the container as last read (:meth:`info` reads it again).
    """

    def __init__(self, client: ContainerSession, record: api.Container) -> None:
        self.client = client
        self.record = record

    @property
    def id(self) -> str:
        return self.record.id

    def __repr__(self) -> str:
        return f"<Container {self.id!r} image={self.record.image!r}>"

    def info(self) -> api.Container:
        """The container's record, read now.

        Raises:
            errdefs.NotFound: it was deleted.
        """
        self.record = self.client.containers.get(self.id)
        return self.record

    def spec(self) -> dict[str, Any]:
        """Its OCI runtime spec."""
        spec = self.info().spec
        return dict(spec.value) if spec is not None and isinstance(spec.value, dict) else {}

    def image(self) -> Image:
        """The image it was created from.

        Raises:
            errdefs.NotFound: it has none, or the image is gone.
        """
        if not self.record.image:
            raise errdefs.NotFound(f"container {self.id}: no image")
        return self.client.image(self.record.image)

    def labels(self) -> dict[str, str]:
        return dict(self.info().labels)

    def set_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        """Set (an empty value removes) labels; the resulting labels."""
        self.record = self.client.containers.label(self.id, labels)
        return dict(self.record.labels)

    def new_task(
        self,
        io: cio.Creator,
        *,
        rootfs: Sequence[Mapping[str, Any]] = (),
        options: Mapping[str, Any] | None = None,
    ) -> Task:
        """Create its task (``tasks.create``): created, not started.

        Args:
            io: the stdio (:mod:`pycontainerd.client.cio`); closed by ``Task.delete``.
            rootfs: explicit rootfs mounts instead of its snapshot.
            options: runc options for this task (``binary_name``, ...).

        Raises:
            errdefs.AlreadyExists: it has a task already.
            errdefs.NotFound: the container or its snapshot is gone.
            errdefs.InvalidArgument: a bad spec (runc's message included).
            errdefs.FailedPrecondition: runc failed to create the container.
        """
        pio = io(self.id)
        req: dict[str, Any] = {
            "container_id": self.id,
            "rootfs": [dict(m) for m in rootfs],
            **pio.config.fields(),
        }
        if options is not None:
            req["options"] = {"type_url": "containerd.runc.v1.Options", "value": dict(options)}
        try:
            resp = self.client.conn.call("tasks.create", req, namespace=self.client.namespace)
        except BaseException:
            pio.close()
            raise
        from ._tasks import Task  # here: ``containers ls`` needs no task code

        return Task(self.client, self.id, pio, int(resp["pid"]))

    def task(self, attach: cio.Creator | None = None) -> Task:
        """Its existing task; with ``attach``, its stdio reattached (``cio.attach``).

        Raises:
            errdefs.NotFound: it has no task.
        """
        from ._tasks import Task

        task = Task(self.client, self.id, None, 0)
        process = task.status()
        task.pid = process.pid
        if attach is not None:
            task.io = attach(self.id)
        return task

    def delete(self, *, snapshot_cleanup: bool = True) -> None:
        """Delete the container (and its snapshot, with ``snapshot_cleanup``).

        Raises:
            errdefs.FailedPrecondition: it has a task (delete the task first).
            errdefs.NotFound: no such container.
        """
        try:
            self.client.conn.call(
                "tasks.get", {"container_id": self.id}, namespace=self.client.namespace
            )
        except errdefs.NotFound:
            pass
        else:
            raise errdefs.FailedPrecondition(
                f"container {self.id}: cannot delete a container with a task"
            )
        self.client.containers.delete(self.id)
        if snapshot_cleanup and self.record.snapshot_key and self.record.snapshotter:
            with contextlib.suppress(errdefs.NotFound):
                self.client.snapshots(self.record.snapshotter).remove(self.record.snapshot_key)


class ContainerStore(Containers):
    """``client.containers``: the store's calls, and ``client.containers()`` listing
    :class:`Container` objects (the Go client's ``Containers``)."""

    def __init__(self, client: ContainerSession) -> None:
        super().__init__(client.conn, client.namespace)
        self.client = client

    def __call__(self, *filters: str) -> builtins.list[Container]:
        return [Container(self.client, r) for r in self.list(filters)]


def load_container(client: ContainerSession, id: str) -> Container:
    """Container ``id``.

    Raises:
        errdefs.NotFound: no such container.
    """
    return Container(client, client.containers.get(id))


def _image_config(image: Image) -> dict[str, Any]:
    _, manifest = image.manifest()
    doc = json.loads(image.read_blob(manifest.config))
    return doc if isinstance(doc, dict) else {}


@contextlib.contextmanager
def _snapshot_root(client: ContainerSession, snapshotter: str, key: str) -> Iterator[str | None]:
    """The new snapshot mounted read-only here, for the image config's user and
    groups to be looked up in its /etc/passwd and /etc/group (``WithImageConfig``)."""
    if not key:
        yield None
        return
    from pycontainerd import mount

    with mount.with_readonly_temp_mount(client.snapshots(snapshotter).mounts(key)) as root:
        yield root


def image_labels(config: Mapping[str, Any] | None) -> dict[str, str]:
    """The container labels an image config gives (its labels, its stop signal)."""
    inner = (config or {}).get("config") or {}
    labels = {str(k): str(v) for k, v in (inner.get("Labels") or {}).items()}
    if inner.get("StopSignal"):
        labels[STOP_SIGNAL_LABEL] = str(inner["StopSignal"])
    return labels


def build_spec(
    namespace: str,
    id: str,
    config: Mapping[str, Any] | None,
    root: str | None,
    args: Sequence[str] | None,
    spec: Mapping[str, Any] | None,
    spec_opts: Sequence[SpecOpt],
) -> dict[str, Any]:
    """The container's spec (``WithNewSpec``): the default spec (or ``spec``), then
    the image config (users looked up under ``root``) or the default ``PATH``,
    then ``args``, then ``spec_opts``.

    Raises:
        errdefs.InvalidArgument: from the options (a bad user, ...).
        errdefs.NotFound: a user or group name the image does not have.
    """
    from pycontainerd import oci  # imported here: pyctr's cold start

    doc = dict(spec) if spec is not None else oci.default_spec(namespace, id)
    opts: list[SpecOpt] = []
    if config is not None:
        opts.append(oci.with_image_config(config, root))
    elif spec is None:
        opts.append(oci.with_default_path_env())
    if args is not None:
        opts.append(oci.with_process_args(*args))
    oci.apply(doc, *opts, *spec_opts)
    return doc


def new_container(
    client: ContainerSession,
    id: str,
    *,
    image: Image | str | None = None,
    args: Sequence[str] | None = None,
    spec_opts: Sequence[SpecOpt] = (),
    spec: Mapping[str, Any] | None = None,
    snapshot: str | None = None,
    snapshotter: str = "overlayfs",
    labels: Mapping[str, str] | None = None,
    runtime: str = DEFAULT_RUNTIME,
    runtime_options: Mapping[str, Any] | None = None,
) -> Container:
    """Create container ``id`` (see the module docstring).

    Args:
        image: an :class:`Image` or a local image name: a new snapshot ``snapshot``
            (default ``id``) from it, and its config in the spec.
        args: the process arguments (instead of the image's Entrypoint + Cmd).
        spec_opts: applied after the image config and ``args``.
        spec: a whole spec to start from instead of the default one.
        snapshot: without an image, an existing snapshot for the rootfs.
        snapshotter: where the snapshot lives.
        labels: container labels (over the image config's labels).
        runtime, runtime_options: the runtime name and runc options.

    Raises:
        errdefs.AlreadyExists: a container ``id`` exists.
        errdefs.NotFound: the image, or ``snapshot``, does not exist.
        errdefs.InvalidArgument: a bad id, or a spec option's bad input.
    """
    try:
        client.containers.get(id)
    except errdefs.NotFound:
        pass
    else:
        raise errdefs.AlreadyExists(f"container {id!r}: already exists")
    all_labels: dict[str, str] = {}
    with client.with_lease() as lease:
        sn = client.snapshots(snapshotter)
        sn.lease = lease
        image_name, config, key, prepared = "", None, "", False
        if image is not None:
            img = client.image(image) if isinstance(image, str) else image
            image_name = img.name
            if not img.is_unpacked(snapshotter):
                img.unpack(snapshotter)
            chain = img.rootfs()
            config = _image_config(img)
            key = snapshot or id
            sn.prepare(key, chain[-1] if chain else "")
            prepared = True
            all_labels.update(image_labels(config))
        elif snapshot:
            sn.stat(snapshot)  # NotFound: "snapshot ... does not exist"
            key = snapshot
        all_labels.update(labels or {})
        try:
            with _snapshot_root(client, snapshotter, key if config else "") as root:
                doc = build_spec(client.namespace, id, config, root, args, spec, spec_opts)
            record = client.containers.create(
                id,
                spec=doc,
                runtime=runtime,
                runtime_options=runtime_options,
                image=image_name,
                snapshotter=snapshotter if key else "",
                snapshot_key=key,
                labels=all_labels,
            )
        except BaseException:
            if prepared:
                with contextlib.suppress(errdefs.ErrdefsError):
                    sn.remove(key)
            raise
    return Container(client, record)
