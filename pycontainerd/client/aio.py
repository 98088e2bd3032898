"""The containers and tasks of the client, on Trio's :class:`~pycontainerd.wire.AsyncClient`.

    from pycontainerd.client import aio, cio
    from pycontainerd.wire import AsyncClient

    async with await AsyncClient.connect(address, namespace="default") as c:
        ctr = await aio.new_container(c, "hello", image="docker.io/library/busybox:latest",
                                      args=["echo", "hi"])
        task = await ctr.new_task(cio.stdio())
        await task.start()
        status = await task.wait()            # .code, .exited_at
        await task.delete(); await ctr.delete()

The same shapes as the blocking client (:class:`~pycontainerd.client.Container`,
:class:`~pycontainerd.client.Task`), the same :mod:`~pycontainerd.client.cio`
stdio and :mod:`pycontainerd.oci` options. The image must be unpacked in the
snapshotter already (``transfer.pull`` unpacks by default). Kept out of
``pycontainerd.client``'s namespace so that the blocking client imports no Trio.
"""

from __future__ import annotations

import contextlib
import json
import signal as signals
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import trio

from pycontainerd import images
from pycontainerd.api import convert, errdefs
from pycontainerd.api import images as api_images
from pycontainerd.api.types import Mount
from pycontainerd.images import platforms
from pycontainerd.wire import AsyncClient

from . import cio
from ._container import DEFAULT_RUNTIME, build_spec, image_labels
from ._containers import RUNC_OPTIONS_TYPE_URL, SPEC_TYPE_URL
from ._tasks import IO_WAIT_TIMEOUT, PROCESS_TYPE_URL, ExitStatus

if TYPE_CHECKING:
    from pycontainerd.oci import SpecOpt

EXPIRE_LABEL = "containerd.io/gc.expire"


def _exit(resp: Any) -> ExitStatus:
    return ExitStatus(int(resp.get("exit_status") or 0), resp.get("exited_at"))


class AsyncProcess:
    """A process of a task (``exec_id`` ``""``: the init process); see :class:`Process`."""

    def __init__(
        self, client: AsyncClient, container_id: str, exec_id: str, io: cio.IO | None, pid: int = 0
    ) -> None:
        self.client = client
        self.container_id = container_id
        self.exec_id = exec_id
        self.io = io
        self.pid = pid

    async def _call(self, method: str, **fields: Any) -> Any:
        return await self.client.call(method, {"container_id": self.container_id, **fields})

    async def start(self) -> int:
        """``tasks.start``; its pid (``FailedPrecondition`` unless created)."""
        self.pid = int((await self._call("tasks.start", exec_id=self.exec_id))["pid"])
        return self.pid

    async def wait(self) -> ExitStatus:
        """Until it exits (``tasks.wait``)."""
        return _exit(await self._call("tasks.wait", exec_id=self.exec_id))

    async def kill(self, sig: int = signals.SIGTERM, *, all: bool = False) -> None:
        """``tasks.kill`` (``NotFound`` "process already finished")."""
        await self._call("tasks.kill", exec_id=self.exec_id, signal=int(sig), all=all)

    async def status(self) -> dict[str, Any]:
        """``tasks.get``'s process map."""
        process: dict[str, Any] = (await self._call("tasks.get", exec_id=self.exec_id))["process"]
        return process

    async def resize(self, width: int, height: int) -> None:
        await self._call("tasks.resize_pty", exec_id=self.exec_id, width=width, height=height)

    async def close_io(self) -> None:
        await self._call("tasks.close_io", exec_id=self.exec_id, stdin=True)

    async def _close_io(self) -> None:
        pio = self.io
        if pio is not None:
            await trio.to_thread.run_sync(pio.wait, IO_WAIT_TIMEOUT)
            await trio.to_thread.run_sync(pio.close)

    async def delete(self) -> ExitStatus:
        """``tasks.delete_process`` and close its stdio (``FailedPrecondition`` if running)."""
        resp = await self._call("tasks.delete_process", exec_id=self.exec_id)
        await self._close_io()
        return _exit(resp)


class AsyncTask(AsyncProcess):
    """A container's task; see :class:`~pycontainerd.client.Task`."""

    def __init__(self, client: AsyncClient, container_id: str, io: cio.IO | None, pid: int) -> None:
        super().__init__(client, container_id, "", io, pid)

    async def pause(self) -> None:
        await self._call("tasks.pause")

    async def resume(self) -> None:
        await self._call("tasks.resume")

    async def pids(self) -> list[int]:
        return [int(p["pid"]) for p in (await self._call("tasks.list_pids"))["processes"]]

    async def metrics(self) -> dict[str, Any]:
        """The task's metric map (``NotFound`` when it has none)."""
        resp = await self.client.call("tasks.metrics", {"filters": [f"id=={self.container_id}"]})
        if not resp["metrics"]:
            raise errdefs.NotFound(f"task {self.container_id}: no metrics")
        metric: dict[str, Any] = resp["metrics"][0]
        return metric

    async def exec(self, exec_id: str, process: Mapping[str, Any], io: cio.Creator) -> AsyncProcess:
        """Add a process (an OCI ``process`` map); start it with ``.start()``."""
        pio = io(exec_id)
        try:
            spec = {"type_url": PROCESS_TYPE_URL, "value": dict(process)}
            await self._call("tasks.exec", exec_id=exec_id, spec=spec, **pio.config.fields())
        except BaseException:
            pio.close()
            raise
        return AsyncProcess(self.client, self.container_id, exec_id, pio)

    async def delete(self, *, kill: bool = False) -> ExitStatus:
        """``tasks.delete`` (killed and waited for first with ``kill``), stdio closed."""
        if kill:
            try:
                await self.kill(signals.SIGKILL, all=True)
                await self.wait()
            except errdefs.NotFound:
                pass
        resp = await self._call("tasks.delete")
        await self._close_io()
        return _exit(resp)


class AsyncContainer:
    """A container; see :class:`~pycontainerd.client.Container`."""

    def __init__(self, client: AsyncClient, record: Mapping[str, Any]) -> None:
        self.client = client
        self.record = dict(record)

    @property
    def id(self) -> str:
        return str(self.record["id"])

    async def new_task(
        self, io: cio.Creator, *, options: Mapping[str, Any] | None = None
    ) -> AsyncTask:
        """``tasks.create`` with ``io``'s stdio (closed by ``delete``)."""
        pio = io(self.id)
        req: dict[str, Any] = {"container_id": self.id, **pio.config.fields()}
        if options is not None:
            req["options"] = {"type_url": RUNC_OPTIONS_TYPE_URL, "value": dict(options)}
        try:
            resp = await self.client.call("tasks.create", req)
        except BaseException:
            pio.close()
            raise
        return AsyncTask(self.client, self.id, pio, int(resp["pid"]))

    async def delete(self, *, snapshot_cleanup: bool = True) -> None:
        """``containers.delete`` and its snapshot (``FailedPrecondition`` with a task)."""
        try:
            await self.client.call("tasks.get", {"container_id": self.id})
        except errdefs.NotFound:
            pass
        else:
            raise errdefs.FailedPrecondition(
                f"container {self.id}: cannot delete a container with a task"
            )
        await self.client.call("containers.delete", {"id": self.id})
        key, snapshotter = self.record.get("snapshot_key"), self.record.get("snapshotter")
        if snapshot_cleanup and key and snapshotter:
            with contextlib.suppress(errdefs.NotFound):
                await self.client.call("snapshots.remove", {"snapshotter": snapshotter, "key": key})


async def load_container(client: AsyncClient, id: str) -> AsyncContainer:
    """Container ``id`` (``NotFound`` if unknown)."""
    return AsyncContainer(client, (await client.call("containers.get", {"id": id}))["container"])


async def _blob(client: AsyncClient, desc: images.Descriptor) -> bytes:
    if desc.size > images.MAX_MANIFEST_SIZE:
        raise errdefs.ResourceExhausted(f"{desc.digest}: {desc.size} bytes")
    chunks = []
    async with await client.stream("content.read", {"digest": desc.digest}) as stream:
        async for item in stream:
            chunks.append(item["data"])
    return b"".join(chunks)


async def image_config(client: AsyncClient, name: str) -> tuple[dict[str, Any], list[str]]:
    """The host platform's image config of image ``name`` and its chain IDs.

    Raises:
        errdefs.NotFound: no such image, or no manifest for this platform.
    """
    record = convert.structure(
        await client.call("images.get", {"name": name}), api_images.GetImageResponse
    )
    matcher = platforms.only(platforms.default_platform())
    desc: images.Descriptor | None = images.Descriptor.from_api(record.image.target)
    while desc is not None and images.is_index(desc.media_type):
        index = images.Index.parse(await _blob(client, desc))
        found = images.candidates(index, matcher)
        desc = found[0] if found else None
    if desc is None or not images.is_manifest(desc.media_type):
        raise errdefs.NotFound(f"image {name!r}: no match for platform in manifest")
    manifest = images.Manifest.parse(await _blob(client, desc))
    raw = await _blob(client, manifest.config)
    config = images.ImageConfig.parse(raw)
    doc = json.loads(raw)
    return (doc if isinstance(doc, dict) else {}), images.chain_ids(config.diff_ids)


async def new_container(
    client: AsyncClient,
    id: str,
    *,
    image: str | None = None,
    args: Sequence[str] | None = None,
    spec_opts: Sequence[SpecOpt] = (),
    spec: Mapping[str, Any] | None = None,
    snapshotter: str = "overlayfs",
    labels: Mapping[str, str] | None = None,
    runtime: str = DEFAULT_RUNTIME,
    runtime_options: Mapping[str, Any] | None = None,
) -> AsyncContainer:
    """Create container ``id`` from the unpacked image ``image``, under a lease; see
    :func:`pycontainerd.client._container.new_container`.

    Raises:
        errdefs.AlreadyExists: a container ``id`` exists.
        errdefs.NotFound: the image, or its unpacked snapshot, does not exist.
    """
    try:
        await client.call("containers.get", {"id": id})
    except errdefs.NotFound:
        pass
    else:
        raise errdefs.AlreadyExists(f"container {id!r}: already exists")
    expire = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    lease = (await client.call("leases.create", {"labels": {EXPIRE_LABEL: expire}}))["lease"]["id"]
    try:
        config: dict[str, Any] | None = None
        key = ""
        if image is not None:
            config, chain = await image_config(client, image)
            key = id
            req = {"snapshotter": snapshotter, "key": key, "parent": chain[-1] if chain else ""}
            prepared = await client.call("snapshots.prepare", req, lease=lease)
            mounts = prepared["mounts"]
        all_labels = {**image_labels(config), **(labels or {})}

        def spec_in_rootfs() -> dict[str, Any]:
            if config is None:
                return build_spec(client.namespace or "", id, None, None, args, spec, spec_opts)
            from pycontainerd import mount

            ms = [convert.structure(m, Mount) for m in mounts]
            with mount.with_readonly_temp_mount(ms) as root:
                return build_spec(client.namespace or "", id, config, root, args, spec, spec_opts)

        try:
            doc = await trio.to_thread.run_sync(spec_in_rootfs)
            container: dict[str, Any] = {
                "id": id,
                "image": image or "",
                "labels": all_labels,
                "runtime": {"name": runtime},
                "spec": {"type_url": SPEC_TYPE_URL, "value": doc},
                "snapshotter": snapshotter if key else "",
                "snapshot_key": key,
            }
            if runtime_options is not None:
                options = {"type_url": RUNC_OPTIONS_TYPE_URL, "value": dict(runtime_options)}
                container["runtime"]["options"] = options
            resp = await client.call("containers.create", {"container": container})
        except BaseException:
            if key:
                with trio.CancelScope(shield=True), contextlib.suppress(errdefs.ErrdefsError):
                    await client.call("snapshots.remove", {"snapshotter": snapshotter, "key": key})
            raise
    finally:
        with trio.CancelScope(shield=True):
            await client.call("leases.delete", {"id": lease})
    return AsyncContainer(client, resp["container"])
