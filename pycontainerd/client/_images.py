"""``client.images``: the image store over the wire (containerd's ``images.*``)."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any

from pycontainerd.api import convert
from pycontainerd.api import images as api
from pycontainerd.api.types import Descriptor
from pycontainerd.wire import Client as Connection


def _descriptor(d: Descriptor) -> dict[str, Any]:
    return {
        "media_type": d.media_type,
        "digest": d.digest,
        "size": d.size,
        "annotations": dict(d.annotations),
    }


class Images:
    """``images.*`` in the client's namespace."""

    def __init__(self, conn: Connection, namespace: str) -> None:
        self._conn = conn
        self.namespace = namespace

    def _call(self, method: str, req: dict[str, Any]) -> Any:
        return self._conn.call(method, req, namespace=self.namespace)

    def get(self, name: str) -> api.Image:
        return convert.structure(
            self._call("images.get", {"name": name}), api.GetImageResponse
        ).image

    def list(self, filters: Sequence[str] = ()) -> builtins.list[api.Image]:
        resp = self._call("images.list", {"filters": list(filters)})
        return convert.structure(resp, api.ListImagesResponse).images

    def create(
        self, name: str, target: Descriptor, labels: Mapping[str, str] | None = None
    ) -> api.Image:
        req = {"image": {"name": name, "target": _descriptor(target), "labels": dict(labels or {})}}
        return convert.structure(self._call("images.create", req), api.CreateImageResponse).image

    def update(
        self,
        name: str,
        *,
        target: Descriptor | None = None,
        labels: Mapping[str, str] | None = None,
        paths: Sequence[str] = (),
    ) -> api.Image:
        image: dict[str, Any] = {"name": name, "labels": dict(labels or {})}
        if target is not None:
            image["target"] = _descriptor(target)
        req: dict[str, Any] = {"image": image}
        if paths:
            req["update_mask"] = {"paths": list(paths)}
        return convert.structure(self._call("images.update", req), api.UpdateImageResponse).image

    def delete(self, name: str, *, sync: bool = False) -> None:
        self._call("images.delete", {"name": name, "sync": sync})
