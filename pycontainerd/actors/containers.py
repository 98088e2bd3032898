"""The ``containers.*`` service: one actor per container.

A :class:`ContainerActor` keyed ``(namespace, id)`` serialises the changes to
one container (create, update, delete) and owns nothing but its key: the
record lives in the metadata database, so the actor is passivated when idle
and activated again by the next message. Reads of one container and listings
go straight to the metadata actor.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from pycontainerd.api import containers as api
from pycontainerd.api import identifiers
from pycontainerd.api.rpc import Call, Wait
from pycontainerd.api.types import AnyValue, Empty
from pycontainerd.metadata import Transaction, tables
from pycontainerd.supervisor import Actor, ActorRef, KeyedSupervisor

from ._service import ask
from .metadata import Update, View


def _any(value: Mapping[str, Any] | None) -> AnyValue | None:
    if value is None:
        return None
    return AnyValue(type_url=str(value.get("type_url", "")), value=value.get("value"))


def _plain(value: AnyValue | None) -> dict[str, Any] | None:
    return None if value is None else {"type_url": value.type_url, "value": value.value}


def to_api(rec: tables.containers.ContainerRecord) -> api.Container:
    return api.Container(
        id=rec.id,
        labels=dict(rec.labels),
        image=rec.image,
        runtime=api.ContainerRuntime(name=rec.runtime_name, options=_any(rec.runtime_options)),
        spec=_any(rec.spec),
        snapshotter=rec.snapshotter,
        snapshot_key=rec.snapshot_key,
        created_at=rec.created_at,
        updated_at=rec.updated_at,
        extensions={k: v for k, v in ((k, _any(v)) for k, v in rec.extensions.items()) if v},
        sandbox=rec.sandbox,
    )


def from_api(c: api.Container) -> tables.containers.ContainerRecord:
    return tables.containers.ContainerRecord(
        id=c.id,
        labels=c.labels,
        image=c.image,
        runtime_name=c.runtime.name,
        runtime_options=_plain(c.runtime.options),
        spec=_plain(c.spec),
        snapshotter=c.snapshotter,
        snapshot_key=c.snapshot_key,
        extensions={k: _plain(v) for k, v in c.extensions.items()},
        sandbox=c.sandbox,
    )


@attrs.frozen
class Create:
    record: tables.containers.ContainerRecord


@attrs.frozen
class Change:
    record: tables.containers.ContainerRecord
    paths: list[str]


@attrs.frozen
class Delete:
    pass


class ContainerActor(Actor):
    """One container's changes, in order."""

    def __init__(self, key: tuple[str, str], metadata: ActorRef) -> None:
        super().__init__(name=f"{key[0]}/{key[1]}", mailbox_size=32)
        self.namespace, self.id = key
        self._metadata = metadata

    def __repr__(self) -> str:
        return f"<ContainerActor ns={self.namespace!r} id={self.id!r} {self.statistics_repr()}>"

    async def _update(self, fn: Any) -> Any:
        return await self._metadata.call(Update(fn))

    async def on_create(self, msg: Create) -> tables.containers.ContainerRecord:
        ns = self.namespace
        result: tables.containers.ContainerRecord = await self._update(
            lambda tx: tables.containers.create(tx, ns, msg.record)
        )
        return result

    async def on_change(self, msg: Change) -> tables.containers.ContainerRecord:
        ns = self.namespace
        result: tables.containers.ContainerRecord = await self._update(
            lambda tx: tables.containers.update(tx, ns, msg.record, msg.paths)
        )
        return result

    async def on_delete(self, msg: Delete) -> None:
        ns, id = self.namespace, self.id

        def write(tx: Transaction) -> None:
            tables.containers.delete(tx, ns, id)

        await self._update(write)

    handlers = {Create: on_create, Change: on_change, Delete: on_delete}


class ContainersService:
    """containerd's Containers service."""

    def __init__(self, metadata: ActorRef) -> None:
        self._metadata = metadata
        self.containers: KeyedSupervisor[tuple[str, str]] = KeyedSupervisor(
            "containers", lambda key: ContainerActor(key, metadata), idle_timeout=60.0
        )

    def methods(self) -> dict[str, Any]:
        return {
            "containers.get": self.get,
            "containers.list": self.list,
            "containers.list_stream": self.list_stream,
            "containers.create": self.create,
            "containers.update": self.update,
            "containers.delete": self.delete,
        }

    async def get(self, call: Call) -> Wait:
        ns, id = call.namespace, call.request.id
        return await ask(
            self._metadata,
            View(lambda db: tables.containers.get(db, ns, id)),
            lambda rec: api.GetContainerResponse(container=to_api(rec)),
        )

    async def list(self, call: Call) -> Wait:
        ns, filters_ = call.namespace, call.request.filters
        return await ask(
            self._metadata,
            View(lambda db: tables.containers.list(db, ns, filters_)),
            lambda recs: api.ListContainersResponse(containers=[to_api(r) for r in recs]),
        )

    async def list_stream(self, call: Call) -> Wait:
        ns, filters_ = call.namespace, call.request.filters
        pending = await self._metadata.request(
            View(lambda db: tables.containers.list(db, ns, filters_))
        )
        stream = call.stream
        assert stream is not None

        async def wait() -> Empty:
            for rec in await pending.wait():
                await stream.send(api.ListContainerMessage(container=to_api(rec)))
            return Empty()

        return wait

    async def _ask(self, call: Call, id: str, msg: object) -> Any:
        return (await self.containers.request((call.namespace, id), msg)).wait

    async def create(self, call: Call) -> Wait:
        rec = from_api(call.request.container)
        tables.containers.validate(rec)  # an invalid id never gets an actor
        wait = await self._ask(call, rec.id, Create(rec))

        async def reply() -> api.CreateContainerResponse:
            return api.CreateContainerResponse(container=to_api(await wait()))

        return reply

    async def update(self, call: Call) -> Wait:
        req: api.UpdateContainerRequest = call.request
        paths = req.update_mask.paths if req.update_mask is not None else []
        rec = from_api(req.container)
        identifiers.validate(rec.id)
        wait = await self._ask(call, rec.id, Change(rec, list(paths)))

        async def reply() -> api.UpdateContainerResponse:
            return api.UpdateContainerResponse(container=to_api(await wait()))

        return reply

    async def delete(self, call: Call) -> Wait:
        id = call.request.id
        identifiers.validate(id)
        wait = await self._ask(call, id, Delete())

        async def reply() -> Empty:
            await wait()
            return Empty()

        return reply
