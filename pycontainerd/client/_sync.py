"""The blocking client library: typed wrappers over :class:`pycontainerd.wire.Client`.

    from pycontainerd.client import Client

    with Client() as c:                        # $PYCONTAINERD_ADDRESS, $PYCONTAINERD_NAMESPACE
        print(c.version().version)
        c.namespaces.create("team-a", {"owner": "ops"})
        for env in c.subscribe(['topic~="/namespaces/"'], since=0):
            print(env.sequence, env.topic)

It imports no Trio, so a cold ``pyctr`` starts fast.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pycontainerd.api import convert
from pycontainerd.wire import DEFAULT_ADDRESS
from pycontainerd.wire import Client as Connection

if TYPE_CHECKING:
    from pycontainerd.api.debug import ActorInfo
    from pycontainerd.api.introspection import Plugin, ServerResponse
    from pycontainerd.api.types import Envelope, Namespace
    from pycontainerd.api.version import VersionResponse

    from ._container import Container, ContainerStore
    from ._content import Content, Leases
    from ._images import Images
    from ._snapshots import Snapshots
    from ._transfer import Image, ProgressCallback

# Every service wrapper and response class is imported where it is first used:
# a cold ``pyctr version`` loads the wire client and the version schema only.

ADDRESS_ENV = "PYCONTAINERD_ADDRESS"
EXPIRE_LABEL = "containerd.io/gc.expire"
NAMESPACE_ENV = "PYCONTAINERD_NAMESPACE"


class Namespaces:
    """``namespaces.*``."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def list(self) -> list[Namespace]:
        from pycontainerd.api.namespaces import ListNamespacesResponse

        resp = self._conn.call("namespaces.list", {}, namespace=None)
        return convert.structure(resp, ListNamespacesResponse).namespaces

    def get(self, name: str) -> Namespace:
        from pycontainerd.api.namespaces import GetNamespaceResponse

        resp = self._conn.call("namespaces.get", {"name": name}, namespace=None)
        return convert.structure(resp, GetNamespaceResponse).namespace

    def create(self, name: str, labels: Mapping[str, str] | None = None) -> Namespace:
        from pycontainerd.api.namespaces import CreateNamespaceResponse

        req = {"namespace": {"name": name, "labels": dict(labels or {})}}
        resp = self._conn.call("namespaces.create", req, namespace=None)
        return convert.structure(resp, CreateNamespaceResponse).namespace

    def label(self, name: str, labels: Mapping[str, str]) -> Namespace:
        """Set (or, with an empty value, remove) the given labels; others are kept."""
        from pycontainerd.api.namespaces import UpdateNamespaceResponse

        req = {
            "namespace": {"name": name, "labels": dict(labels)},
            "update_mask": {"paths": [f"labels.{k}" for k in labels]},
        }
        resp = self._conn.call("namespaces.update", req, namespace=None)
        return convert.structure(resp, UpdateNamespaceResponse).namespace

    def delete(self, name: str) -> None:
        self._conn.call("namespaces.delete", {"name": name}, namespace=None)


class Client:
    """A connection to pycontainerd.

    Args:
        address: the socket (default ``$PYCONTAINERD_ADDRESS`` or
            ``/run/pycontainerd/pycontainerd.sock``).
        namespace: for namespaced calls (default ``$PYCONTAINERD_NAMESPACE`` or
            ``default``).
        timeout: per-call timeout in seconds.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        namespace: str | None = None,
        timeout: float | None = None,
    ) -> None:
        self.address = address or os.environ.get(ADDRESS_ENV) or DEFAULT_ADDRESS
        self.namespace = namespace or os.environ.get(NAMESPACE_ENV) or "default"
        self.conn = Connection(self.address, namespace=self.namespace, timeout=timeout)
        self.namespaces = Namespaces(self.conn)

    @functools.cached_property
    def content(self) -> Content:
        """``content.*`` (:class:`~pycontainerd.client.Content`), under ``with_lease``'s lease."""
        from ._content import Content

        return Content(self.conn, self.address, self.namespace)

    @functools.cached_property
    def leases(self) -> Leases:
        """``leases.*`` (:class:`~pycontainerd.client.Leases`)."""
        from ._content import Leases

        return Leases(self.conn, self.namespace)

    @functools.cached_property
    def images(self) -> Images:
        """``images.*`` (:class:`~pycontainerd.client.Images`)."""
        from ._images import Images

        return Images(self.conn, self.namespace)

    @functools.cached_property
    def containers(self) -> ContainerStore:
        """``containers.*``; calling it lists :class:`~pycontainerd.client.Container` objects."""
        from ._container import ContainerStore

        return ContainerStore(self)

    @property
    def lease(self) -> str | None:
        """The lease ``client.content`` adds to (``with_lease``'s), without importing it."""
        content = self.__dict__.get("content")
        return None if content is None else content.lease

    @contextlib.contextmanager
    def with_lease(
        self, *, expire: timedelta | None = timedelta(hours=24), sync_delete: bool = False
    ) -> Iterator[str]:
        """Hold a new lease while the block runs (the Go client's ``WithLease``).

        What ``client.content`` creates in the block is added to the lease; the
        lease expires after ``expire`` should the client die, and is deleted
        when the block ends (``sync_delete``: collect garbage before returning).
        """
        labels = {}
        if expire is not None:
            when = datetime.now(UTC) + expire
            labels[EXPIRE_LABEL] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
        lease = self.leases.create(labels=labels).id
        previous, self.content.lease = self.content.lease, lease
        try:
            yield lease
        finally:
            self.content.lease = previous
            self.leases.delete(lease, sync=sync_delete)

    def snapshots(self, name: str = "overlayfs") -> Snapshots:
        """The snapshotter ``name`` of the daemon (a ``Snapshotter``), in this namespace.

        It uses the lease of ``client.content`` at the time of the call (the one
        ``with_lease`` holds); set its ``lease`` attribute to change that.
        """
        from ._snapshots import Snapshots

        return Snapshots(self.conn, self.namespace, name, lease=self.lease)

    def image(self, name: str, platform: str = "") -> Image:
        """The local image ``name`` as an :class:`Image` (``NotFound`` if unknown)."""
        from ._transfer import Image

        return Image(self, self.images.get(name), platform)

    def pull(
        self,
        ref: str,
        *,
        platform: str | Sequence[str] | None = None,
        all_platforms: bool = False,
        unpack: bool = True,
        snapshotter: str = "overlayfs",
        plain_http: bool = False,
        hosts_dir: str = "",
        user: str | tuple[str, str] | None = None,
        progress: ProgressCallback | None = None,
    ) -> Image:
        """``transfer.pull`` under a lease held while it runs; the pulled :class:`Image`."""
        from pycontainerd.api.transfer import PullResponse

        from ._transfer import Image, auth_map, platform_list, run_transfer

        req = {
            "ref": ref,
            "platforms": platform_list(platform),
            "all_platforms": all_platforms,
            "unpack": unpack,
            "snapshotter": snapshotter,
            "plain_http": plain_http,
            "hosts_dir": hosts_dir,
            "auth": auth_map(user),
        }
        resp = run_transfer(self, "transfer.pull", req, progress)
        image = convert.structure(resp, PullResponse).image
        return Image(self, image, platform if isinstance(platform, str) else "")

    def push(
        self,
        ref: str,
        *,
        source_ref: str = "",
        platform: str | Sequence[str] | None = None,
        plain_http: bool = False,
        hosts_dir: str = "",
        user: str | tuple[str, str] | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        """``transfer.push`` of ``source_ref`` (default ``ref``) to ``ref``."""
        from ._transfer import auth_map, platform_list, run_transfer

        req = {
            "ref": ref,
            "source_ref": source_ref,
            "platforms": platform_list(platform),
            "plain_http": plain_http,
            "hosts_dir": hosts_dir,
            "auth": auth_map(user),
        }
        run_transfer(self, "transfer.push", req, progress)

    def import_(
        self,
        path: str,
        *,
        base_name: str = "",
        platform: str | Sequence[str] | None = None,
        all_platforms: bool = False,
        unpack: bool = True,
        snapshotter: str = "overlayfs",
        progress: ProgressCallback | None = None,
    ) -> list[Image]:
        """``transfer.import`` of a tarball on the daemon's host (an absolute path)."""
        from pycontainerd.api.transfer import ImportResponse

        from ._transfer import Image, platform_list, run_transfer

        req = {
            "path": os.path.abspath(path),
            "base_name": base_name,
            "platforms": platform_list(platform),
            "all_platforms": all_platforms,
            "unpack": unpack,
            "snapshotter": snapshotter,
        }
        resp = run_transfer(self, "transfer.import", req, progress)
        return [Image(self, i) for i in convert.structure(resp, ImportResponse).images]

    def export(
        self,
        path: str,
        refs: Sequence[str],
        *,
        platform: str | Sequence[str] | None = None,
        all_platforms: bool = False,
        progress: ProgressCallback | None = None,
    ) -> None:
        """``transfer.export`` of ``refs`` to a tarball on the daemon's host."""
        from ._transfer import platform_list, run_transfer

        req = {
            "path": os.path.abspath(path),
            "refs": list(refs),
            "platforms": platform_list(platform),
            "all_platforms": all_platforms,
        }
        run_transfer(self, "transfer.export", req, progress)

    def new_container(self, id: str, **kw: Any) -> Container:
        """Create container ``id`` (see :func:`pycontainerd.client._container.new_container`)."""
        from ._container import new_container

        return new_container(self, id, **kw)

    def load_container(self, id: str) -> Container:
        """Container ``id`` (``NotFound`` if unknown)."""
        from ._container import load_container

        return load_container(self, id)

    def call(self, method: str, request: dict[str, Any] | None = None, **kw: Any) -> Any:
        """Any method by name, with plain maps (see ``docs/protocol.md``)."""
        return self.conn.call(method, request, **kw)

    def version(self) -> VersionResponse:
        from pycontainerd.api.version import VersionResponse

        return convert.structure(
            self.conn.call("version.version", {}, namespace=None), VersionResponse
        )

    def plugins(self, filters: list[str] | None = None) -> list[Plugin]:
        from pycontainerd.api.introspection import PluginsResponse

        resp = self.conn.call("introspection.plugins", {"filters": filters or []}, namespace=None)
        return convert.structure(resp, PluginsResponse).plugins

    def server(self) -> ServerResponse:
        from pycontainerd.api.introspection import ServerResponse

        resp = self.conn.call("introspection.server", {}, namespace=None)
        return convert.structure(resp, ServerResponse)

    def actors(self) -> list[ActorInfo]:
        from pycontainerd.api.debug import ActorsResponse

        resp = self.conn.call("debug.actors", {}, namespace=None)
        return convert.structure(resp, ActorsResponse).actors

    def publish(self, topic: str, event: Mapping[str, Any]) -> None:
        self.conn.call("events.publish", {"topic": topic, "event": dict(event)})

    def subscribe(
        self, filters: list[str] | None = None, *, since: int | None = None
    ) -> Iterator[Envelope]:
        """Envelopes matching any of ``filters``; with ``since``, replayed from the journal first.

        Raises:
            FailedPrecondition: ``since`` is older than the oldest event held.
            ResourceExhausted: this subscriber fell too far behind (resubscribe with ``since``).
        """
        from pycontainerd.api.types import Envelope

        req: dict[str, Any] = {"filters": filters or []}
        if since is not None:
            req["since"] = since
        stream = self.conn.stream("events.subscribe", req, namespace=None)
        with stream:
            for item in stream:
                yield convert.structure(item, Envelope)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
