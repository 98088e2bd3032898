"""``client.containers``: container metadata over the wire (``containers.*``)."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any

from pycontainerd.api import containers as api
from pycontainerd.api import convert
from pycontainerd.wire import Client as Connection

SPEC_TYPE_URL = "types.containerd.io/opencontainers/runtime-spec/1/Spec"
RUNC_OPTIONS_TYPE_URL = "containerd.runc.v1.Options"


class Containers:
    """``containers.*`` in the client's namespace."""

    def __init__(self, conn: Connection, namespace: str) -> None:
        self._conn = conn
        self.namespace = namespace

    def _call(self, method: str, req: dict[str, Any]) -> Any:
        return self._conn.call(method, req, namespace=self.namespace)

    def get(self, id: str) -> api.Container:
        resp = self._call("containers.get", {"id": id})
        return convert.structure(resp, api.GetContainerResponse).container

    def list(self, filters: Sequence[str] = ()) -> builtins.list[api.Container]:
        resp = self._call("containers.list", {"filters": list(filters)})
        return convert.structure(resp, api.ListContainersResponse).containers

    def create(
        self,
        id: str,
        *,
        spec: Mapping[str, Any],
        runtime: str = "io.containerd.runc.v2",
        runtime_options: Mapping[str, Any] | None = None,
        image: str = "",
        snapshotter: str = "",
        snapshot_key: str = "",
        labels: Mapping[str, str] | None = None,
    ) -> api.Container:
        """Create container metadata; ``spec`` is the OCI runtime spec document."""
        container: dict[str, Any] = {
            "id": id,
            "image": image,
            "labels": dict(labels or {}),
            "runtime": {"name": runtime},
            "spec": {"type_url": SPEC_TYPE_URL, "value": dict(spec)},
            "snapshotter": snapshotter,
            "snapshot_key": snapshot_key,
        }
        if runtime_options is not None:
            container["runtime"]["options"] = {
                "type_url": RUNC_OPTIONS_TYPE_URL,
                "value": dict(runtime_options),
            }
        resp = self._call("containers.create", {"container": container})
        return convert.structure(resp, api.CreateContainerResponse).container

    def label(self, id: str, labels: Mapping[str, str]) -> api.Container:
        """Set (or, with an empty value, remove) the given labels."""
        req = {
            "container": {"id": id, "labels": dict(labels)},
            "update_mask": {"paths": [f"labels.{k}" for k in labels]},
        }
        resp = self._call("containers.update", req)
        return convert.structure(resp, api.UpdateContainerResponse).container

    def update(self, container: Mapping[str, Any], paths: Sequence[str] = ()) -> api.Container:
        req: dict[str, Any] = {"container": dict(container)}
        if paths:
            req["update_mask"] = {"paths": list(paths)}
        resp = self._call("containers.update", req)
        return convert.structure(resp, api.UpdateContainerResponse).container

    def delete(self, id: str) -> None:
        self._call("containers.delete", {"id": id})
