"""containerd's Namespaces service (``namespaces.*``)."""

from __future__ import annotations

import attrs

from .types import FieldMask, Namespace


@attrs.frozen(kw_only=True)
class GetNamespaceRequest:
    name: str = ""


@attrs.frozen(kw_only=True)
class GetNamespaceResponse:
    namespace: Namespace = attrs.field(factory=Namespace)


@attrs.frozen(kw_only=True)
class ListNamespacesRequest:
    filter: str = ""
    """Ignored, as in containerd."""


@attrs.frozen(kw_only=True)
class ListNamespacesResponse:
    namespaces: list[Namespace] = attrs.field(factory=list)


@attrs.frozen(kw_only=True)
class CreateNamespaceRequest:
    namespace: Namespace = attrs.field(factory=Namespace)


@attrs.frozen(kw_only=True)
class CreateNamespaceResponse:
    namespace: Namespace = attrs.field(factory=Namespace)


@attrs.frozen(kw_only=True)
class UpdateNamespaceRequest:
    namespace: Namespace = attrs.field(factory=Namespace)
    update_mask: FieldMask | None = None
    """Only ``labels.<key>`` paths; absent = replace all labels."""


@attrs.frozen(kw_only=True)
class UpdateNamespaceResponse:
    namespace: Namespace = attrs.field(factory=Namespace)


@attrs.frozen(kw_only=True)
class DeleteNamespaceRequest:
    name: str = ""
