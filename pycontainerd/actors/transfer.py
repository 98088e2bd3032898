"""The ``transfer.*`` service: pull, push, import and export as streamed jobs.

A transfer is long and holds no state between calls, so there is no actor per
job: the request's task runs the :mod:`pycontainerd.transfer` job itself,
its store calls in worker threads under the daemon's IO limiter, its progress
sent as ``stream.item``::

    transfer.pull ──▶ validate (phase one) ──▶ wait(): pull(...) ── items ──▶ client
                                                  │ call.cancel → trio cancellation
                                                  ▼ lease deleted, GC told

A call with a ``lease`` in its meta runs under that lease; otherwise the job
makes its own and deletes it when it ends, however it ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from pycontainerd import transfer
from pycontainerd.api import errdefs
from pycontainerd.api import transfer as api
from pycontainerd.api.rpc import Call, Wait
from pycontainerd.content import LocalStore
from pycontainerd.diff import WalkingDiffer
from pycontainerd.images import MatchComparer, platforms
from pycontainerd.metadata import ContentStore, NamespacedSnapshotter
from pycontainerd.remotes import HostsConfig, Resolver, reference
from pycontainerd.snapshots import Snapshotter
from pycontainerd.supervisor import ActorRef, io_limiter

from .gc import notify
from .images import image_to_api
from .metadata import ActorRunner


@attrs.frozen(kw_only=True)
class TransferConfig:
    """The plugin's configuration."""

    config_path: str = ""
    """The default ``hosts.toml`` directory (containerd's ``certs.d``)."""
    max_concurrent_downloads: int = 3


def matcher_for(specifiers: list[str], *, all_platforms: bool = False) -> MatchComparer:
    """The platform matcher of a request (the host's platform by default).

    Raises:
        errdefs.InvalidArgument: a specifier that does not parse.
    """
    if all_platforms:
        return platforms.AllComparer()
    if not specifiers:
        return platforms.only(platforms.default_platform())
    parsed = platforms.parse_all(specifiers)
    if len(parsed) == 1:
        return platforms.only(parsed[0])
    return platforms.ordered(*parsed)


def _check_path(value: str, what: str) -> Path:
    if not value:
        raise errdefs.InvalidArgument(f"{what}: path is required")
    path = Path(value)
    if not path.is_absolute():
        raise errdefs.InvalidArgument(f"{what}: path {value!r} must be absolute")
    return path


class TransferService:
    """containerd's Transfer service, one method per direction.

    Args:
        metadata: the metadata actor.
        backend: the local content store.
        shared: the content sharing policy.
        snapshotters: the loaded snapshotters by name.
        differ: applies layers.
        gc: told when a job ends (its lease is gone).
        config: the plugin's configuration.
    """

    def __init__(
        self,
        metadata: ActorRef,
        backend: LocalStore,
        snapshotters: Mapping[str, Snapshotter],
        differ: WalkingDiffer,
        gc: ActorRef | None,
        config: TransferConfig,
        *,
        shared: bool = True,
    ) -> None:
        self.runner = ActorRunner(metadata)
        self.backend = backend
        self.snapshotters = dict(snapshotters)
        self.differ = differ
        self.gc = gc
        self.config = config
        self.shared = shared

    def methods(self) -> dict[str, Any]:
        return {
            "transfer.pull": self.pull,
            "transfer.push": self.push,
            "transfer.import": self.import_,
            "transfer.export": self.export,
        }

    def stores(self, namespace: str) -> transfer.Stores:
        def content(lease: str | None) -> ContentStore:
            return ContentStore(
                self.runner, self.backend, namespace, lease=lease, shared=self.shared
            )

        def snapshotter(name: str, lease: str | None) -> NamespacedSnapshotter:
            backend = self.snapshotters.get(name)
            if backend is None:
                raise errdefs.InvalidArgument(f"snapshotter not loaded: {name}")
            return NamespacedSnapshotter(self.runner, backend, name, namespace, lease=lease)

        return transfer.Stores(
            namespace=namespace,
            runner=self.runner,
            content=content,
            snapshotter=snapshotter,
            differ=self.differ,
            limiter=io_limiter(),
        )

    def _resolver(self, plain_http: bool, hosts_dir: str, auth: api.Auth | None) -> Resolver:
        directory = hosts_dir or self.config.config_path
        hosts = HostsConfig(Path(directory) if directory else None, plain_http=plain_http)
        credentials = None if auth is None else (auth.username, auth.password)
        return Resolver(
            hosts,
            credentials,
            plain_http=plain_http,
            max_concurrency=self.config.max_concurrent_downloads,
        )

    def _snapshotter(self, name: str) -> str:
        name = name or transfer.DEFAULT_SNAPSHOTTER
        if name not in self.snapshotters:
            raise errdefs.InvalidArgument(f"snapshotter not loaded: {name}")
        return name

    def _progress(self, call: Call) -> transfer.ProgressFn:
        stream = call.stream

        async def send(item: api.Progress) -> None:
            if stream is not None:
                await stream.send(item)

        return send

    def _ended(self) -> None:
        notify(self.gc, dirty=True)

    async def pull(self, call: Call) -> Wait:
        req: api.PullRequest = call.request
        reference.parse_remote(req.ref)
        matcher = matcher_for(req.platforms, all_platforms=req.all_platforms)
        unpack_matcher = (
            platforms.only(platforms.default_platform()) if req.all_platforms else matcher
        )
        snapshotter = self._snapshotter(req.snapshotter) if req.unpack else ""
        stores = self.stores(call.namespace)
        concurrent = req.max_concurrent_downloads or self.config.max_concurrent_downloads

        async def wait() -> api.PullResponse:
            try:
                async with self._resolver(req.plain_http, req.hosts_dir, req.auth) as resolver:
                    rec = await transfer.pull(
                        stores,
                        resolver,
                        req.ref,
                        matcher=matcher,
                        unpack_matcher=unpack_matcher,
                        all_platforms=req.all_platforms,
                        unpack=req.unpack,
                        snapshotter=snapshotter,
                        lease=call.meta.lease,
                        progress=self._progress(call),
                        max_concurrent=concurrent,
                    )
            finally:
                self._ended()
            return api.PullResponse(image=image_to_api(rec))

        return wait

    async def push(self, call: Call) -> Wait:
        req: api.PushRequest = call.request
        reference.parse_remote(req.ref)
        matcher = matcher_for(req.platforms) if req.platforms else None
        stores = self.stores(call.namespace)

        async def wait() -> api.PushResponse:
            try:
                async with self._resolver(req.plain_http, req.hosts_dir, req.auth) as resolver:
                    rec = await transfer.push(
                        stores,
                        resolver,
                        req.ref,
                        source_ref=req.source_ref,
                        matcher=matcher,
                        lease=call.meta.lease,
                        progress=self._progress(call),
                        max_concurrent=self.config.max_concurrent_downloads,
                    )
            finally:
                self._ended()
            return api.PushResponse(image=image_to_api(rec))

        return wait

    async def import_(self, call: Call) -> Wait:
        req: api.ImportRequest = call.request
        path = _check_path(req.path, "transfer.import")
        matcher = matcher_for(req.platforms, all_platforms=req.all_platforms)
        unpack_matcher = (
            platforms.only(platforms.default_platform()) if req.all_platforms else matcher
        )
        snapshotter = self._snapshotter(req.snapshotter) if req.unpack else ""
        stores = self.stores(call.namespace)

        async def wait() -> api.ImportResponse:
            try:
                recs = await transfer.import_(
                    stores,
                    path,
                    matcher=matcher,
                    unpack_matcher=unpack_matcher,
                    base_name=req.base_name,
                    all_platforms=req.all_platforms,
                    unpack=req.unpack,
                    snapshotter=snapshotter,
                    lease=call.meta.lease,
                    progress=self._progress(call),
                )
            finally:
                self._ended()
            return api.ImportResponse(images=[image_to_api(r) for r in recs])

        return wait

    async def export(self, call: Call) -> Wait:
        req: api.ExportRequest = call.request
        path = _check_path(req.path, "transfer.export")
        if not req.refs:
            raise errdefs.InvalidArgument("transfer.export: refs must name at least one image")
        matcher = matcher_for(req.platforms, all_platforms=req.all_platforms)
        stores = self.stores(call.namespace)

        async def wait() -> api.ExportResponse:
            try:
                recs = await transfer.export(
                    stores,
                    path,
                    req.refs,
                    matcher=matcher,
                    all_platforms=req.all_platforms,
                    lease=call.meta.lease,
                    progress=self._progress(call),
                )
            finally:
                self._ended()
            return api.ExportResponse(images=[image_to_api(r) for r in recs])

        return wait
