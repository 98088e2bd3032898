"""The built-in plugins, in the order the daemon registers them.

Types and ids follow containerd's so that ``pyctr plugins ls`` reads like
``ctr plugins ls``; the RPC services keep containerd's ``io.containerd.grpc.v1``
type although they are served over msgpack-RPC.
"""

from __future__ import annotations

from typing import Any

import attrs

from pycontainerd.plugin import InitContext, Instance, PluginError, Registration
from pycontainerd.supervisor import ActorRef, ChildSpec

from .events import EventsActor, EventsService
from .exchange import Exchange
from .introspection import IntrospectionService
from .metadata import MetadataActor
from .namespaces import NamespacesService

METADATA = "io.containerd.metadata.v1"
EVENT = "io.containerd.event.v1"
GRPC = "io.containerd.grpc.v1"


@attrs.frozen
class Metadata:
    """The value of the metadata plugin: its actor and the live exchange."""

    ref: ActorRef
    exchange: Exchange


def _number(config: Any, key: str) -> float | None:
    value = config.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise PluginError(f"{key} must be a number, got {value!r}")
    return None if value is None else float(value)


async def _init_metadata(ic: InitContext) -> Instance:
    exchange = Exchange(queue_size=int(_number(ic.config, "subscriber_queue_size") or 1))
    path = ic.root / "meta.db"
    ref = await ic.start_child(
        ChildSpec.for_actor(lambda: MetadataActor(path, exchange), id="metadata")
    )
    return Instance(value=Metadata(ref, exchange), exports={"path": str(path)})


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
            defaults={"subscriber_queue_size": 1024},
        ),
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
        Registration(type=GRPC, id="namespaces", requires=(METADATA,), init=_init_namespaces),
        Registration(type=GRPC, id="introspection", requires=("*",), init=_init_introspection),
    ]
