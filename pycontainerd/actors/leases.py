"""The ``leases.*`` service: thin handlers over the metadata actor; ``delete``
with ``sync`` waits for a garbage collection."""

from __future__ import annotations

from typing import Any

from pycontainerd.api import leases as api
from pycontainerd.api.rpc import Call, Wait
from pycontainerd.api.types import Empty
from pycontainerd.metadata import Transaction, tables
from pycontainerd.supervisor import ActorRef

from ._service import ask
from .gc import Collect, notify
from .metadata import Update, View


def _lease(rec: tables.leases.LeaseRecord) -> api.Lease:
    return api.Lease(id=rec.id, created_at=rec.created_at, labels=dict(rec.labels))


def _resource(r: api.LeaseResource) -> tables.leases.Resource:
    return tables.leases.Resource(id=r.id, type=r.type)


class LeasesService:
    """containerd's Leases service."""

    def __init__(self, metadata: ActorRef, gc: ActorRef) -> None:
        self._metadata = metadata
        self._gc = gc

    def methods(self) -> dict[str, Any]:
        return {
            "leases.create": self.create,
            "leases.delete": self.delete,
            "leases.list": self.list,
            "leases.add_resource": self.add_resource,
            "leases.delete_resource": self.delete_resource,
            "leases.list_resources": self.list_resources,
        }

    async def create(self, call: Call) -> Wait:
        req: api.CreateLeaseRequest = call.request
        ns, lease_id = call.namespace, req.id or tables.leases.generate_id()

        def write(tx: Transaction) -> tables.leases.LeaseRecord:
            return tables.leases.create(tx, ns, lease_id, req.labels)

        return await ask(
            self._metadata, Update(write), lambda r: api.CreateLeaseResponse(lease=_lease(r))
        )

    async def delete(self, call: Call) -> Wait:
        req: api.DeleteLeaseRequest = call.request
        ns = call.namespace

        def write(tx: Transaction) -> None:
            tables.leases.delete(tx, ns, req.id)

        pending = await self._metadata.request(Update(write))

        async def wait() -> Empty:
            await pending.wait()
            if req.sync:
                await self._gc.call(Collect())
            else:
                notify(self._gc, dirty=True)
            return Empty()

        return wait

    async def list(self, call: Call) -> Wait:
        ns, filters_ = call.namespace, call.request.filters
        return await ask(
            self._metadata,
            View(lambda db: tables.leases.list(db, ns, filters_)),
            lambda recs: api.ListLeasesResponse(leases=[_lease(r) for r in recs]),
        )

    async def add_resource(self, call: Call) -> Wait:
        req: api.AddResourceRequest = call.request
        ns = call.namespace

        def write(tx: Transaction) -> None:
            tables.leases.add_resource(tx, ns, req.id, _resource(req.resource))

        return await ask(self._metadata, Update(write))

    async def delete_resource(self, call: Call) -> Wait:
        req: api.DeleteResourceRequest = call.request
        ns = call.namespace

        def write(tx: Transaction) -> None:
            tables.leases.delete_resource(tx, ns, req.id, _resource(req.resource))

        pending = await self._metadata.request(Update(write))

        async def wait() -> Empty:
            await pending.wait()
            notify(self._gc, dirty=True)
            return Empty()

        return wait

    async def list_resources(self, call: Call) -> Wait:
        ns, lease_id = call.namespace, call.request.id
        return await ask(
            self._metadata,
            View(lambda db: tables.leases.list_resources(db, ns, lease_id)),
            lambda rs: api.ListResourcesResponse(
                resources=[api.LeaseResource(id=r.id, type=r.type) for r in rs]
            ),
        )
