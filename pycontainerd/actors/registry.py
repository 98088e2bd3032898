"""The built-in plugins, in the order the daemon registers them.

Types and ids follow containerd's so that ``pyctr plugins ls`` reads like
``ctr plugins ls``; the RPC services keep containerd's ``io.containerd.grpc.v1``
type although they are served over msgpack-RPC.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import trio

from pycontainerd import remotes
from pycontainerd.content import LocalStore
from pycontainerd.diff import WalkingDiffer
from pycontainerd.metadata import ContentStore, collect_snapshots, repair_snapshots
from pycontainerd.plugin import InitContext, Instance, PluginError, Registration
from pycontainerd.snapshots import (
    BtrfsSnapshotter,
    NativeSnapshotter,
    OverlaySnapshotter,
    Snapshotter,
)
from pycontainerd.supervisor import ActorRef, ChildSpec

from .containers import ContainersService
from .content import ContentConfig, ContentService
from .diff import DiffService
from .events import EventsActor, EventsService
from .exchange import Exchange
from .gc import GcScheduler, SchedulerConfig
from .images import ImagesService
from .introspection import IntrospectionService
from .leases import LeasesService
from .metadata import ActorRunner, MetadataActor
from .namespaces import NamespacesService
from .snapshots import SnapshotsService
from .tasks import TasksService
from .transfer import TransferConfig, TransferService

METADATA = "io.containerd.metadata.v1"
EVENT = "io.containerd.event.v1"
CONTENT = "io.containerd.content.v1"
DIFFER = "io.containerd.differ.v1"
GC = "io.containerd.gc.v1"
GRPC = "io.containerd.grpc.v1"
SNAPSHOTTER = "io.containerd.snapshotter.v1"


@attrs.frozen
class Metadata:
    """The value of the metadata plugin: its actor and the live exchange."""

    ref: ActorRef
    exchange: Exchange
    shared_content: bool = True


@attrs.frozen
class Collector:
    """The value of the gc plugin: the scheduler actor."""

    ref: ActorRef


def _duration(config: Any, key: str) -> float:
    """Seconds from a number or a Go duration string (``"100ms"``, ``"1s"``, ``"2m"``)."""
    value = config.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        units = {"ms": 0.001, "us": 1e-6, "µs": 1e-6, "ns": 1e-9, "s": 1.0, "m": 60.0, "h": 3600.0}
        for suffix in sorted(units, key=len, reverse=True):
            if value.endswith(suffix):
                try:
                    return float(value[: -len(suffix)]) * units[suffix]
                except ValueError:
                    break
    raise PluginError(f"{key} must be seconds or a duration like '100ms', got {value!r}")


def _number(config: Any, key: str) -> float | None:
    value = config.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise PluginError(f"{key} must be a number, got {value!r}")
    return None if value is None else float(value)


async def _init_metadata(ic: InitContext) -> Instance:
    exchange = Exchange(queue_size=int(_number(ic.config, "subscriber_queue_size") or 1))
    policy = ic.config.get("content_sharing_policy", "shared")
    if policy not in ("shared", "isolated"):
        raise PluginError(f"content_sharing_policy must be shared or isolated, got {policy!r}")
    path = ic.root / "meta.db"
    ref = await ic.start_child(
        ChildSpec.for_actor(lambda: MetadataActor(path, exchange), id="metadata")
    )
    return Instance(
        value=Metadata(ref, exchange, shared_content=policy == "shared"),
        exports={"path": str(path)},
    )


async def _init_content_store(ic: InitContext) -> Instance:
    store = LocalStore(ic.root)
    return Instance(value=store, exports={"root": str(ic.root)})


def _snapshotter_root(ic: InitContext) -> Path:
    """containerd's ``root_path``, else the plugin's directory."""
    value = ic.config.get("root_path") or ""
    if not isinstance(value, str):
        raise PluginError(f"root_path must be a path, got {value!r}")
    return Path(value) if value else ic.root


def _flag(config: Any, key: str) -> bool:
    value = config.get(key, False)
    if not isinstance(value, bool):
        raise PluginError(f"{key} must be true or false, got {value!r}")
    return value


async def _init_overlayfs(ic: InitContext) -> Instance:
    root = _snapshotter_root(ic)
    options = ic.config.get("mount_options") or []
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        raise PluginError(f"mount_options must be a list of strings, got {options!r}")
    sync_remove = _flag(ic.config, "sync_remove")
    upperdir_label = _flag(ic.config, "upperdir_label")

    def open_() -> OverlaySnapshotter:
        return OverlaySnapshotter(
            root, mount_options=options, sync_remove=sync_remove, upperdir_label=upperdir_label
        )

    sn = await trio.to_thread.run_sync(open_)
    return Instance(value=sn, exports={"root": str(root)})


async def _init_native(ic: InitContext) -> Instance:
    root = _snapshotter_root(ic)
    sn = await trio.to_thread.run_sync(NativeSnapshotter, root)
    return Instance(value=sn, exports={"root": str(root)})


async def _init_btrfs(ic: InitContext) -> Instance:
    """Fails with ``FailedPrecondition`` (the plugin is skipped) unless the root is on btrfs."""
    root = _snapshotter_root(ic)
    sn = await trio.to_thread.run_sync(BtrfsSnapshotter, root)
    return Instance(value=sn, exports={"root": str(root)})


def _snapshotters(ic: InitContext) -> dict[str, Snapshotter]:
    """The snapshotter plugins that loaded, by id."""
    return {
        id_: inst.value
        for (type_, id_), inst in ic.instances.items()
        if type_ == SNAPSHOTTER and inst.error is None
    }


async def _init_snapshots(ic: InitContext) -> Instance:
    md = ic.get(METADATA, "sqlite", Metadata)
    gc = ic.get(GC, "scheduler", Collector)
    service = SnapshotsService(md.ref, _snapshotters(ic), gc.ref)
    await trio.to_thread.run_sync(repair_snapshots, service.runner, service.backends)
    await ic.start_child(ChildSpec.for_supervisor(service.actors))
    return Instance(methods=service.methods())


async def _init_gc(ic: InitContext) -> Instance:
    md = ic.get(METADATA, "sqlite", Metadata)
    backend = ic.get(CONTENT, "content", LocalStore)
    snapshotters = _snapshotters(ic)
    runner = ActorRunner(md.ref)

    def remove_snapshots(removed: list[tuple[str, str, str, str]]) -> None:
        collect_snapshots(runner, snapshotters, removed)

    config = SchedulerConfig(
        pause_threshold=_number(ic.config, "pause_threshold") or 0.0,
        deletion_threshold=int(_number(ic.config, "deletion_threshold") or 0),
        mutation_threshold=int(_number(ic.config, "mutation_threshold") or 0),
        schedule_delay=_duration(ic.config, "schedule_delay"),
        startup_delay=_duration(ic.config, "startup_delay"),
    )
    ref = await ic.start_child(
        ChildSpec.for_actor(lambda: GcScheduler(md.ref, backend, config, remove_snapshots), id="gc")
    )
    return Instance(value=Collector(ref))


async def _init_content(ic: InitContext) -> Instance:
    md = ic.get(METADATA, "sqlite", Metadata)
    backend = ic.get(CONTENT, "content", LocalStore)
    gc = ic.get(GC, "scheduler", Collector)
    service = ContentService(md.ref, backend, ContentConfig(shared=md.shared_content), gc.ref)
    await ic.start_child(ChildSpec.for_supervisor(service.ingests))
    return Instance(methods=service.methods())


async def _init_differ(ic: InitContext) -> Instance:
    return Instance(value=WalkingDiffer(ic.root / "tmpmounts"))


async def _init_diff(ic: InitContext) -> Instance:
    md = ic.get(METADATA, "sqlite", Metadata)
    backend = ic.get(CONTENT, "content", LocalStore)
    differ = ic.get(DIFFER, "walking", WalkingDiffer)
    runner = ActorRunner(md.ref)

    def store(namespace: str, lease: str | None) -> ContentStore:
        return ContentStore(runner, backend, namespace, lease=lease, shared=md.shared_content)

    return Instance(methods=DiffService(differ, store).methods())


async def _init_containers(ic: InitContext) -> Instance:
    md = ic.get(METADATA, "sqlite", Metadata)
    service = ContainersService(md.ref)
    await ic.start_child(ChildSpec.for_supervisor(service.containers))
    return Instance(methods=service.methods())


async def _init_tasks(ic: InitContext) -> Instance:
    md = ic.get(METADATA, "sqlite", Metadata)
    config = ic.daemon_config
    service = TasksService(
        md.ref,
        _snapshotters(ic),
        state=Path(config.state),
        root=Path(config.root),
        address=config.rpc.address,
    )
    await ic.start_child(ChildSpec.for_supervisor(service.tasks))
    await service.recover()  # before the socket accepts calls
    return Instance(methods=service.methods())


async def _init_images(ic: InitContext) -> Instance:
    md = ic.get(METADATA, "sqlite", Metadata)
    gc = ic.get(GC, "scheduler", Collector)
    return Instance(methods=ImagesService(md.ref, gc.ref).methods())


async def _init_transfer(ic: InitContext) -> Instance:
    # the CA bundle (~0.1 s to load) in a worker thread now, not on the loop at
    # the first pull or push
    await trio.to_thread.run_sync(remotes.default_tls_context)
    md = ic.get(METADATA, "sqlite", Metadata)
    backend = ic.get(CONTENT, "content", LocalStore)
    gc = ic.get(GC, "scheduler", Collector)
    differ = ic.get(DIFFER, "walking", WalkingDiffer)
    config_path = ic.config.get("config_path") or ""
    if not isinstance(config_path, str):
        raise PluginError(f"config_path must be a path, got {config_path!r}")
    downloads = int(_number(ic.config, "max_concurrent_downloads") or 3)
    if downloads < 1:
        raise PluginError("max_concurrent_downloads must be at least 1")
    service = TransferService(
        md.ref,
        backend,
        _snapshotters(ic),
        differ,
        gc.ref,
        TransferConfig(config_path=config_path, max_concurrent_downloads=downloads),
        shared=md.shared_content,
    )
    return Instance(methods=service.methods())


async def _init_leases(ic: InitContext) -> Instance:
    md = ic.get(METADATA, "sqlite", Metadata)
    gc = ic.get(GC, "scheduler", Collector)
    return Instance(methods=LeasesService(md.ref, gc.ref).methods())


async def _init_events(ic: InitContext) -> Instance:
    md = ic.get(METADATA, "sqlite", Metadata)
    max_age = _number(ic.config, "max_age_seconds")
    max_events = _number(ic.config, "max_events")
    interval = _number(ic.config, "trim_interval_seconds") or 60.0
    await ic.start_child(
        ChildSpec.for_actor(
            lambda: EventsActor(
                md.ref,
                max_age=max_age,
                max_events=None if max_events is None else int(max_events),
                interval=interval,
            ),
            id="events",
        )
    )
    return Instance(methods=EventsService(md.ref, md.exchange).methods())


async def _init_namespaces(ic: InitContext) -> Instance:
    md = ic.get(METADATA, "sqlite", Metadata)
    return Instance(methods=NamespacesService(md.ref).methods())


async def _init_introspection(ic: InitContext) -> Instance:
    service = IntrospectionService(
        registrations=lambda: list(ic.registrations),
        instances=ic.instances,
        uuid_path=ic.root / "uuid",
        tree=ic.tree,
    )
    return Instance(methods=service.methods())


def builtins() -> list[Registration]:
    """The daemon's own plugins (third-party ones come from entry points)."""
    return [
        Registration(
            type=METADATA,
            id="sqlite",
            init=_init_metadata,
            defaults={"subscriber_queue_size": 1024, "content_sharing_policy": "shared"},
        ),
        Registration(type=CONTENT, id="content", init=_init_content_store),
        Registration(
            type=SNAPSHOTTER,
            id="overlayfs",
            init=_init_overlayfs,
            defaults={
                "root_path": "",
                "mount_options": [],
                "sync_remove": False,
                "upperdir_label": False,
            },
        ),
        Registration(type=SNAPSHOTTER, id="native", init=_init_native, defaults={"root_path": ""}),
        Registration(type=SNAPSHOTTER, id="btrfs", init=_init_btrfs, defaults={"root_path": ""}),
        Registration(
            type=EVENT,
            id="exchange",
            requires=(METADATA,),
            init=_init_events,
            defaults={
                "max_age_seconds": 7 * 24 * 3600,
                "max_events": 1_000_000,
                "trim_interval_seconds": 60,
            },
        ),
        Registration(
            type=GC,
            id="scheduler",
            requires=(METADATA, CONTENT, SNAPSHOTTER),
            init=_init_gc,
            defaults={
                "pause_threshold": 0.02,
                "deletion_threshold": 0,
                "mutation_threshold": 100,
                "schedule_delay": "0ms",
                "startup_delay": "100ms",
            },
        ),
        Registration(type=GRPC, id="namespaces", requires=(METADATA,), init=_init_namespaces),
        Registration(type=GRPC, id="content", requires=(METADATA, CONTENT, GC), init=_init_content),
        Registration(type=GRPC, id="leases", requires=(METADATA, GC), init=_init_leases),
        Registration(
            type=GRPC, id="snapshots", requires=(METADATA, SNAPSHOTTER, GC), init=_init_snapshots
        ),
        Registration(type=GRPC, id="images", requires=(METADATA, GC), init=_init_images),
        Registration(type=GRPC, id="containers", requires=(METADATA,), init=_init_containers),
        Registration(type=GRPC, id="tasks", requires=(METADATA, SNAPSHOTTER), init=_init_tasks),
        Registration(type=DIFFER, id="walking", requires=(METADATA,), init=_init_differ),
        Registration(type=GRPC, id="diff", requires=(METADATA, CONTENT, DIFFER), init=_init_diff),
        Registration(
            type=GRPC,
            id="transfer",
            requires=(METADATA, CONTENT, SNAPSHOTTER, DIFFER, GC),
            init=_init_transfer,
            defaults={"config_path": "", "max_concurrent_downloads": 3},
        ),
        Registration(type=GRPC, id="introspection", requires=("*",), init=_init_introspection),
    ]
