from __future__ import annotations

import pytest

from pycontainerd import images
from pycontainerd.api import errdefs


@pytest.mark.parametrize(
    ("media_type", "compression"),
    [
        (images.MEDIA_TYPE_DOCKER_SCHEMA2_LAYER, "unknown"),
        (images.MEDIA_TYPE_DOCKER_SCHEMA2_LAYER_FOREIGN, "unknown"),
        (images.MEDIA_TYPE_DOCKER_SCHEMA2_LAYER_GZIP, "gzip"),
        (images.MEDIA_TYPE_DOCKER_SCHEMA2_LAYER_FOREIGN_GZIP, "gzip"),
        (images.MEDIA_TYPE_DOCKER_SCHEMA2_LAYER_ZSTD, "zstd"),
        (images.MEDIA_TYPE_DOCKER_SCHEMA2_LAYER_GZIP + "+encrypted", ""),
        (images.MEDIA_TYPE_OCI_LAYER, ""),
        (images.MEDIA_TYPE_OCI_LAYER_GZIP, "gzip"),
        (images.MEDIA_TYPE_OCI_LAYER_ZSTD, "zstd"),
        (images.MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE, ""),
        (images.MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE_GZIP, "gzip"),
        (images.MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE_ZSTD, "zstd"),
        (images.MEDIA_TYPE_IMAGE_LAYER_GZIP_ENCRYPTED, "gzip"),
        (images.MEDIA_TYPE_IMAGE_LAYER_ENCRYPTED, ""),
    ],
)
def test_diff_compression(media_type: str, compression: str) -> None:
    assert images.diff_compression(media_type) == compression
    assert images.is_layer(media_type)


@pytest.mark.parametrize(
    "media_type",
    [images.MEDIA_TYPE_OCI_MANIFEST, images.MEDIA_TYPE_OCI_CONFIG, "application/octet-stream"],
)
def test_diff_compression_of_a_non_layer_is_not_implemented(media_type: str) -> None:
    with pytest.raises(errdefs.NotImplemented_, match="unrecognised mediatype"):
        images.diff_compression(media_type)
    assert not images.is_layer(media_type)


def test_kinds() -> None:
    assert images.is_manifest(images.MEDIA_TYPE_OCI_MANIFEST)
    assert images.is_manifest(images.MEDIA_TYPE_DOCKER_SCHEMA2_MANIFEST)
    assert not images.is_manifest(images.MEDIA_TYPE_DOCKER_SCHEMA1_MANIFEST)
    assert images.is_index(images.MEDIA_TYPE_OCI_INDEX)
    assert images.is_index(images.MEDIA_TYPE_DOCKER_SCHEMA2_MANIFEST_LIST)
    assert not images.is_index(images.MEDIA_TYPE_OCI_MANIFEST)
    assert images.is_config(images.MEDIA_TYPE_DOCKER_SCHEMA2_CONFIG)
    assert not images.is_config(images.MEDIA_TYPE_CONTAINERD_CHECKPOINT)
    assert images.is_known_config(images.MEDIA_TYPE_CONTAINERD_CHECKPOINT)
    assert images.is_non_distributable(images.MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE_GZIP)
    assert images.is_non_distributable(images.MEDIA_TYPE_DOCKER_SCHEMA2_LAYER_FOREIGN)
    assert not images.is_non_distributable(images.MEDIA_TYPE_OCI_LAYER_GZIP)
    assert images.is_docker_type(images.MEDIA_TYPE_DOCKER_SCHEMA2_CONFIG)


def test_child_gc_labels() -> None:
    ref = "containerd.io/gc.ref.content"
    assert images.child_gc_label(images.MEDIA_TYPE_OCI_MANIFEST) == ref + ".m."
    assert images.child_gc_label(images.MEDIA_TYPE_DOCKER_SCHEMA2_MANIFEST) == ref + ".m."
    assert images.child_gc_label(images.MEDIA_TYPE_OCI_CONFIG) == ref + ".config"
    assert images.child_gc_label(images.MEDIA_TYPE_OCI_LAYER_ZSTD) == ref + ".l."
    assert images.child_gc_label(images.MEDIA_TYPE_OCI_INDEX) == ref + "."
    assert images.child_gc_label(images.MEDIA_TYPE_IN_TOTO) == ref + "."
    subject = {images.ANNOTATION_MANIFEST_SUBJECT: "sha256:x"}
    assert images.child_gc_label(images.MEDIA_TYPE_OCI_MANIFEST, subject) == (
        ref + ".referrer.sha256."
    )
    assert images.child_gc_label_filter_layers(images.MEDIA_TYPE_OCI_LAYER_GZIP) is None
    assert images.child_gc_label_filter_layers(images.MEDIA_TYPE_OCI_CONFIG) == ref + ".config"
