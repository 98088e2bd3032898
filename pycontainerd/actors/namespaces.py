"""The ``namespaces.*`` service: thin handlers over the metadata actor."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pycontainerd.api import namespaces as api
from pycontainerd.api.rpc import Call, Wait
from pycontainerd.api.types import Namespace
from pycontainerd.metadata import NamespaceRecord, Transaction, tables
from pycontainerd.supervisor import ActorRef

from ._service import ask
from .metadata import Update, View

if TYPE_CHECKING:
    from pycontainerd.metadata import Database


def _namespace(rec: NamespaceRecord) -> Namespace:
    return Namespace(name=rec.name, labels=dict(rec.labels))


class NamespacesService:
    """containerd's Namespaces service (with ``get`` of an unknown name ``NotFound``)."""

    def __init__(self, metadata: ActorRef) -> None:
        self._metadata = metadata

    def methods(self) -> dict[str, Any]:
        return {
            "namespaces.create": self.create,
            "namespaces.get": self.get,
            "namespaces.list": self.list,
            "namespaces.update": self.update,
            "namespaces.delete": self.delete,
        }

    async def create(self, call: Call) -> Wait:
        ns: Namespace = call.request.namespace

        def write(tx: Transaction) -> NamespaceRecord:
            return tables.namespaces.create(tx, ns.name, ns.labels)

        return await ask(
            self._metadata,
            Update(write),
            lambda rec: api.CreateNamespaceResponse(namespace=_namespace(rec)),
        )

    async def get(self, call: Call) -> Wait:
        name: str = call.request.name

        def read(db: Database) -> NamespaceRecord:
            return tables.namespaces.get(db, name)

        return await ask(
            self._metadata,
            View(read),
            lambda rec: api.GetNamespaceResponse(namespace=_namespace(rec)),
        )

    async def list(self, call: Call) -> Wait:
        return await ask(
            self._metadata,
            View(tables.namespaces.list),
            lambda recs: api.ListNamespacesResponse(namespaces=[_namespace(r) for r in recs]),
        )

    async def update(self, call: Call) -> Wait:
        req: api.UpdateNamespaceRequest = call.request
        ns = req.namespace
        paths = req.update_mask.paths if req.update_mask is not None else None

        def write(tx: Transaction) -> NamespaceRecord:
            return tables.namespaces.update(tx, ns.name, ns.labels, paths)

        return await ask(
            self._metadata,
            Update(write),
            lambda rec: api.UpdateNamespaceResponse(namespace=_namespace(rec)),
        )

    async def delete(self, call: Call) -> Wait:
        name: str = call.request.name

        def write(tx: Transaction) -> None:
            tables.namespaces.delete(tx, name)

        return await ask(self._metadata, Update(write))
