"""containerd's Leases service (``leases.*``)."""

from __future__ import annotations

from datetime import datetime

import attrs

from .bounds import FILTERS


@attrs.frozen(kw_only=True)
class Lease:
    id: str = ""
    created_at: datetime | None = None
    labels: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class LeaseResource:
    """``type``: ``content`` (id: a digest), ``ingests`` (a ref), ``snapshots/<snapshotter>``."""

    id: str = ""
    type: str = ""


@attrs.frozen(kw_only=True)
class CreateLeaseRequest:
    id: str = ""
    """Empty: the daemon generates one."""
    labels: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class CreateLeaseResponse:
    lease: Lease = attrs.field(factory=Lease)


@attrs.frozen(kw_only=True)
class DeleteLeaseRequest:
    id: str = ""
    sync: bool = False
    """Run the garbage collector before answering."""


@attrs.frozen(kw_only=True)
class ListLeasesRequest:
    filters: list[str] = attrs.field(factory=list, metadata=FILTERS)


@attrs.frozen(kw_only=True)
class ListLeasesResponse:
    leases: list[Lease] = attrs.field(factory=list)


@attrs.frozen(kw_only=True)
class AddResourceRequest:
    id: str = ""
    resource: LeaseResource = attrs.field(factory=LeaseResource)


@attrs.frozen(kw_only=True)
class DeleteResourceRequest:
    id: str = ""
    resource: LeaseResource = attrs.field(factory=LeaseResource)


@attrs.frozen(kw_only=True)
class ListResourcesRequest:
    id: str = ""


@attrs.frozen(kw_only=True)
class ListResourcesResponse:
    resources: list[LeaseResource] = attrs.field(factory=list)
