"""containerd's Containers service (``containers.*``)."""

from __future__ import annotations

from datetime import datetime

import attrs

from .bounds import FILTERS
from .types import AnyValue, FieldMask


@attrs.frozen(kw_only=True)
class ContainerRuntime:
    name: str = ""
    """e.g. ``io.containerd.runc.v2``."""
    options: AnyValue | None = None
    """runc options ``{binary_name, systemd_cgroup, ...}`` as an Any."""


@attrs.frozen(kw_only=True)
class Container:
    id: str = ""
    labels: dict[str, str] = attrs.field(factory=dict)
    image: str = ""
    runtime: ContainerRuntime = attrs.field(factory=ContainerRuntime)
    spec: AnyValue | None = None
    """The OCI runtime spec (``type_url``
    ``types.containerd.io/opencontainers/runtime-spec/1/Spec``)."""
    snapshotter: str = ""
    snapshot_key: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    extensions: dict[str, AnyValue] = attrs.field(factory=dict)
    sandbox: str = ""


@attrs.frozen(kw_only=True)
class GetContainerRequest:
    id: str = ""


@attrs.frozen(kw_only=True)
class GetContainerResponse:
    container: Container = attrs.field(factory=Container)


@attrs.frozen(kw_only=True)
class ListContainersRequest:
    filters: list[str] = attrs.field(factory=list, metadata=FILTERS)


@attrs.frozen(kw_only=True)
class ListContainersResponse:
    containers: list[Container] = attrs.field(factory=list)


@attrs.frozen(kw_only=True)
class ListContainerMessage:
    container: Container = attrs.field(factory=Container)


@attrs.frozen(kw_only=True)
class CreateContainerRequest:
    container: Container = attrs.field(factory=Container)


@attrs.frozen(kw_only=True)
class CreateContainerResponse:
    container: Container = attrs.field(factory=Container)


@attrs.frozen(kw_only=True)
class UpdateContainerRequest:
    container: Container = attrs.field(factory=Container)
    update_mask: FieldMask | None = None
    """``labels``, ``labels.<k>``, ``spec``, ``extensions``, ``extensions.<k>``,
    ``image``, ``snapshotkey``; absent = replace all of them."""


@attrs.frozen(kw_only=True)
class UpdateContainerResponse:
    container: Container = attrs.field(factory=Container)


@attrs.frozen(kw_only=True)
class DeleteContainerRequest:
    id: str = ""
