"""Media types of images and their layers (containerd's ``images/mediatypes.go``).

Docker schema 2 and OCI share the same shapes under different names; containerd
accepts both everywhere, and so do we. A layer's media type says how it is
compressed (:func:`diff_compression`); a manifest's children are named by GC
labels (:func:`child_gc_label`) so that garbage collection follows an image from
its index down to every layer.
"""

from __future__ import annotations

from collections.abc import Mapping

from pycontainerd.api import errdefs

__all__ = [
    "ANNOTATION_MANIFEST_SUBJECT",
    "COMPRESSION_UNKNOWN",
    "LABEL_DISTRIBUTION_SOURCE",
    "LABEL_GC_REF_CONTENT",
    "LABEL_UNCOMPRESSED",
    "MEDIA_TYPE_CONTAINERD_CHECKPOINT",
    "MEDIA_TYPE_CONTAINERD_CHECKPOINT_CONFIG",
    "MEDIA_TYPE_DOCKER_SCHEMA1_MANIFEST",
    "MEDIA_TYPE_DOCKER_SCHEMA2_CONFIG",
    "MEDIA_TYPE_DOCKER_SCHEMA2_LAYER",
    "MEDIA_TYPE_DOCKER_SCHEMA2_LAYER_FOREIGN",
    "MEDIA_TYPE_DOCKER_SCHEMA2_LAYER_FOREIGN_GZIP",
    "MEDIA_TYPE_DOCKER_SCHEMA2_LAYER_GZIP",
    "MEDIA_TYPE_DOCKER_SCHEMA2_LAYER_ZSTD",
    "MEDIA_TYPE_DOCKER_SCHEMA2_MANIFEST",
    "MEDIA_TYPE_DOCKER_SCHEMA2_MANIFEST_LIST",
    "MEDIA_TYPE_IMAGE_LAYER_ENCRYPTED",
    "MEDIA_TYPE_IMAGE_LAYER_GZIP_ENCRYPTED",
    "MEDIA_TYPE_IN_TOTO",
    "MEDIA_TYPE_OCI_CONFIG",
    "MEDIA_TYPE_OCI_EMPTY",
    "MEDIA_TYPE_OCI_INDEX",
    "MEDIA_TYPE_OCI_LAYER",
    "MEDIA_TYPE_OCI_LAYER_GZIP",
    "MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE",
    "MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE_GZIP",
    "MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE_ZSTD",
    "MEDIA_TYPE_OCI_LAYER_ZSTD",
    "MEDIA_TYPE_OCI_MANIFEST",
    "child_gc_label",
    "child_gc_label_filter_layers",
    "diff_compression",
    "is_config",
    "is_docker_type",
    "is_index",
    "is_known_config",
    "is_layer",
    "is_manifest",
    "is_non_distributable",
]

# Docker schema 2 (and the legacy schema 1).
MEDIA_TYPE_DOCKER_SCHEMA2_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
MEDIA_TYPE_DOCKER_SCHEMA2_LAYER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar"
MEDIA_TYPE_DOCKER_SCHEMA2_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MEDIA_TYPE_DOCKER_SCHEMA2_LAYER_FOREIGN_GZIP = (
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
)
MEDIA_TYPE_DOCKER_SCHEMA2_LAYER_ZSTD = "application/vnd.docker.image.rootfs.diff.tar.zstd"
MEDIA_TYPE_DOCKER_SCHEMA2_CONFIG = "application/vnd.docker.container.image.v1+json"
MEDIA_TYPE_DOCKER_SCHEMA2_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_TYPE_DOCKER_SCHEMA2_MANIFEST_LIST = (
    "application/vnd.docker.distribution.manifest.list.v2+json"
)
MEDIA_TYPE_DOCKER_SCHEMA1_MANIFEST = "application/vnd.docker.distribution.manifest.v1+prettyjws"

# OCI image-spec.
MEDIA_TYPE_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_TYPE_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_TYPE_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_TYPE_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MEDIA_TYPE_OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_TYPE_OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE = "application/vnd.oci.image.layer.nondistributable.v1.tar"
MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE_GZIP = (
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
)
MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE_ZSTD = (
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
)
MEDIA_TYPE_OCI_EMPTY = "application/vnd.oci.empty.v1+json"

# containerd's own.
MEDIA_TYPE_CONTAINERD_CHECKPOINT = "application/vnd.containerd.container.criu.checkpoint.criu.tar"
MEDIA_TYPE_CONTAINERD_CHECKPOINT_CONFIG = (
    "application/vnd.containerd.container.checkpoint.config.v1+proto"
)
MEDIA_TYPE_IMAGE_LAYER_ENCRYPTED = MEDIA_TYPE_OCI_LAYER + "+encrypted"
MEDIA_TYPE_IMAGE_LAYER_GZIP_ENCRYPTED = MEDIA_TYPE_OCI_LAYER_GZIP + "+encrypted"
MEDIA_TYPE_IN_TOTO = "application/vnd.in-toto+json"

COMPRESSION_UNKNOWN = "unknown"
""":func:`diff_compression` for a Docker tar whose compression must be detected."""


def _parse_media_type(media_type: str) -> tuple[str, list[str]]:
    """Split ``base+ext1+ext2`` into the base and the sorted extensions (``parseMediaTypes``)."""
    base, plus, ext = media_type.partition("+")
    if not plus:
        return base, []
    return base, sorted(ext.split("+", 49))


def diff_compression(media_type: str) -> str:
    """The compression of a layer media type: ``""``, ``"gzip"``, ``"zstd"`` or ``"unknown"``.

    ``""`` means an uncompressed tar, or a wrapped (``+encrypted``) Docker type;
    ``"unknown"`` means the Docker tar type, whose content must be detected by
    magic because Docker used it for compressed layers too.

    Raises:
        errdefs.NotImplemented_: not a layer media type.
    """
    base, ext = _parse_media_type(media_type)
    if base in (MEDIA_TYPE_DOCKER_SCHEMA2_LAYER, MEDIA_TYPE_DOCKER_SCHEMA2_LAYER_FOREIGN):
        return "" if ext else COMPRESSION_UNKNOWN
    if base in (
        MEDIA_TYPE_DOCKER_SCHEMA2_LAYER_GZIP,
        MEDIA_TYPE_DOCKER_SCHEMA2_LAYER_FOREIGN_GZIP,
    ):
        return "" if ext else "gzip"
    if base == MEDIA_TYPE_DOCKER_SCHEMA2_LAYER_ZSTD:
        return "" if ext else "zstd"
    if base in (MEDIA_TYPE_OCI_LAYER, MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE):
        if ext and ext[-1] in ("gzip", "zstd"):
            return ext[-1]
        return ""
    raise errdefs.NotImplemented_(f"unrecognised mediatype {media_type}")


def is_index(media_type: str) -> bool:
    """An OCI index or a Docker manifest list."""
    return media_type in (MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_DOCKER_SCHEMA2_MANIFEST_LIST)


def is_manifest(media_type: str) -> bool:
    """An OCI image manifest or a Docker schema 2 manifest (not schema 1)."""
    return media_type in (MEDIA_TYPE_OCI_MANIFEST, MEDIA_TYPE_DOCKER_SCHEMA2_MANIFEST)


def is_config(media_type: str) -> bool:
    """An OCI or Docker image config (not a checkpoint config)."""
    return media_type in (MEDIA_TYPE_OCI_CONFIG, MEDIA_TYPE_DOCKER_SCHEMA2_CONFIG)


def is_known_config(media_type: str) -> bool:
    """A config media type, including containerd's checkpoint configs."""
    return is_config(media_type) or media_type in (
        MEDIA_TYPE_CONTAINERD_CHECKPOINT,
        MEDIA_TYPE_CONTAINERD_CHECKPOINT_CONFIG,
    )


def is_layer(media_type: str) -> bool:
    """A layer of any known flavour (OCI incl. nondistributable, Docker incl. foreign)."""
    if media_type.startswith("application/vnd.oci.image.layer."):
        return True
    base, _ = _parse_media_type(media_type)
    return base in (
        MEDIA_TYPE_DOCKER_SCHEMA2_LAYER,
        MEDIA_TYPE_DOCKER_SCHEMA2_LAYER_GZIP,
        MEDIA_TYPE_DOCKER_SCHEMA2_LAYER_FOREIGN,
        MEDIA_TYPE_DOCKER_SCHEMA2_LAYER_FOREIGN_GZIP,
        MEDIA_TYPE_DOCKER_SCHEMA2_LAYER_ZSTD,
    )


def is_non_distributable(media_type: str) -> bool:
    """A layer registries are not asked to store (OCI nondistributable, Docker foreign)."""
    return media_type.startswith(
        "application/vnd.oci.image.layer.nondistributable."
    ) or media_type.startswith("application/vnd.docker.image.rootfs.foreign.")


def is_docker_type(media_type: str) -> bool:
    """A media type under ``application/vnd.docker.``."""
    return media_type.startswith("application/vnd.docker.")


LABEL_GC_REF_CONTENT = "containerd.io/gc.ref.content"
LABEL_UNCOMPRESSED = "containerd.io/uncompressed"
LABEL_DISTRIBUTION_SOURCE = "containerd.io/distribution.source"


ANNOTATION_MANIFEST_SUBJECT = "io.containerd.manifest.subject"


def child_gc_label(media_type: str, annotations: Mapping[str, str] | None = None) -> str:
    """The GC label key a parent uses for a child of this media type (``ChildGCLabels``).

    ``...content.m.`` for manifests, ``...content.config`` for configs,
    ``...content.l.`` for layers, ``...content.`` for anything else (indexes
    included). A key ending in ``.`` always gets an index appended; other keys
    only from their second occurrence (see :func:`pycontainerd.images.child_labels`).
    """
    if annotations and ANNOTATION_MANIFEST_SUBJECT in annotations:
        return LABEL_GC_REF_CONTENT + ".referrer.sha256."
    if is_known_config(media_type):
        return LABEL_GC_REF_CONTENT + ".config"
    if is_manifest(media_type):
        return LABEL_GC_REF_CONTENT + ".m."
    if is_layer(media_type):
        return LABEL_GC_REF_CONTENT + ".l."
    return LABEL_GC_REF_CONTENT + "."


def child_gc_label_filter_layers(
    media_type: str, annotations: Mapping[str, str] | None = None
) -> str | None:
    """:func:`child_gc_label`, but ``None`` for layers (``ChildGCLabelsFilterLayers``).

    Used when layers are not fetched (a pull that only keeps manifests), so
    that no label points at content that will never exist.
    """
    if is_layer(media_type):
        return None
    return child_gc_label(media_type, annotations)
