"""containerd's Images service (``images.*``)."""

from __future__ import annotations

from datetime import datetime

import attrs

from .bounds import FILTERS
from .types import Descriptor, FieldMask


@attrs.frozen(kw_only=True)
class Image:
    """A name pointing at a target (an index or a manifest) in the content store."""

    name: str = ""
    labels: dict[str, str] = attrs.field(factory=dict)
    target: Descriptor = attrs.field(factory=Descriptor)
    created_at: datetime | None = None
    updated_at: datetime | None = None


@attrs.frozen(kw_only=True)
class GetImageRequest:
    name: str = ""


@attrs.frozen(kw_only=True)
class GetImageResponse:
    image: Image = attrs.field(factory=Image)


@attrs.frozen(kw_only=True)
class ListImagesRequest:
    filters: list[str] = attrs.field(factory=list, metadata=FILTERS)


@attrs.frozen(kw_only=True)
class ListImagesResponse:
    images: list[Image] = attrs.field(factory=list)


@attrs.frozen(kw_only=True)
class CreateImageRequest:
    image: Image = attrs.field(factory=Image)
    source_date_epoch: datetime | None = None
    """Accepted and ignored, as containerd 1.7 does."""


@attrs.frozen(kw_only=True)
class CreateImageResponse:
    image: Image = attrs.field(factory=Image)


@attrs.frozen(kw_only=True)
class UpdateImageRequest:
    image: Image = attrs.field(factory=Image)
    update_mask: FieldMask | None = None
    """``labels``, ``labels.<k>``, ``target``, ``annotations``, ``annotations.<k>``;
    absent = replace labels and target."""
    source_date_epoch: datetime | None = None


@attrs.frozen(kw_only=True)
class UpdateImageResponse:
    image: Image = attrs.field(factory=Image)


@attrs.frozen(kw_only=True)
class DeleteImageRequest:
    name: str = ""
    sync: bool = False
    """Collect garbage before answering."""
    target: Descriptor | None = None
    """When set, delete only if the image still points at this digest."""
