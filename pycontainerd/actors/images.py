"""The ``images.*`` service: thin handlers over the metadata actor; ``delete``
with ``sync`` waits for a garbage collection."""

from __future__ import annotations

from typing import Any

from pycontainerd.api import errdefs
from pycontainerd.api import images as api
from pycontainerd.api.rpc import Call, Wait
from pycontainerd.api.types import Empty
from pycontainerd.metadata import Transaction, tables
from pycontainerd.supervisor import ActorRef

from ._service import ask
from .gc import Collect, notify
from .metadata import Update, View


def image_to_api(rec: tables.images.ImageRecord) -> api.Image:
    return api.Image(
        name=rec.name,
        labels=dict(rec.labels),
        target=rec.target,
        created_at=rec.created_at,
        updated_at=rec.updated_at,
    )


class ImagesService:
    """containerd's Images service."""

    def __init__(self, metadata: ActorRef, gc: ActorRef) -> None:
        self._metadata = metadata
        self._gc = gc

    def methods(self) -> dict[str, Any]:
        return {
            "images.get": self.get,
            "images.list": self.list,
            "images.create": self.create,
            "images.update": self.update,
            "images.delete": self.delete,
        }

    async def get(self, call: Call) -> Wait:
        ns, name = call.namespace, call.request.name
        return await ask(
            self._metadata,
            View(lambda db: tables.images.get(db, ns, name)),
            lambda rec: api.GetImageResponse(image=image_to_api(rec)),
        )

    async def list(self, call: Call) -> Wait:
        ns, filters_ = call.namespace, call.request.filters
        return await ask(
            self._metadata,
            View(lambda db: tables.images.list(db, ns, filters_)),
            lambda recs: api.ListImagesResponse(images=[image_to_api(r) for r in recs]),
        )

    async def create(self, call: Call) -> Wait:
        image: api.Image = call.request.image
        ns = call.namespace

        def write(tx: Transaction) -> tables.images.ImageRecord:
            return tables.images.create(tx, ns, image.name, image.target, image.labels)

        return await ask(
            self._metadata,
            Update(write),
            lambda rec: api.CreateImageResponse(image=image_to_api(rec)),
        )

    async def update(self, call: Call) -> Wait:
        req: api.UpdateImageRequest = call.request
        ns, image = call.namespace, req.image
        paths = req.update_mask.paths if req.update_mask is not None else []

        def write(tx: Transaction) -> tables.images.ImageRecord:
            return tables.images.update(tx, ns, image.name, image.target, image.labels, paths)

        pending = await self._metadata.request(Update(write))

        async def wait() -> api.UpdateImageResponse:
            rec = await pending.wait()
            self._mutated(dirty="target" in paths or not paths)
            return api.UpdateImageResponse(image=image_to_api(rec))

        return wait

    async def delete(self, call: Call) -> Wait:
        req: api.DeleteImageRequest = call.request
        ns = call.namespace

        def write(tx: Transaction) -> None:
            if req.target is not None:
                current = tables.images.get(tx, ns, req.name)
                if current.target.digest != req.target.digest:
                    raise errdefs.NotFound(
                        f"image {req.name!r}: target is {current.target.digest}, "
                        f"not {req.target.digest}"
                    )
            tables.images.delete(tx, ns, req.name)

        pending = await self._metadata.request(Update(write))

        async def wait() -> Empty:
            await pending.wait()
            if req.sync:
                await self._gc.call(Collect())
            else:
                self._mutated(dirty=True)
            return Empty()

        return wait

    def _mutated(self, dirty: bool) -> None:
        notify(self._gc, dirty=dirty)
